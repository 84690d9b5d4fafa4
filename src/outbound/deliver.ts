/**
 * Delivers messages for one destination domain to its MX hosts (RFC 5321 §5.1) over as few
 * connections as possible: the MX lookup once, then one session (`session.ts`) in which the
 * shared SmtpSender sends message after message (pipelined when offered). Hosts are tried in
 * MX order, each of their addresses in turn (at most `MAX_MX_ADDRESSES`), until one greets and
 * says EHLO. A session lost
 * after it delivered something is opened again at the same host for the rest; one lost before
 * that moves on to the next address. A session under opportunistic TLS lost by a hang-up, a
 * timeout or a failed write (not a 421) goes on in plaintext at the same address instead, as
 * Postfix at "may" (`TLS_SESSION_FAILURES`); its messages whose end of data never went out are
 * offered again there, the others are deferred (the peer may have taken them: never twice).
 * Whether failed TLS may go on in plaintext is the next message's `TlsPlan`: as Postfix, not at
 * a message's first attempt (the next address is tried under TLS, else the mail waits for its
 * retry), and a message whose TLS session was lost right after its end of data goes in plaintext
 * from the start of its next attempt (`TLS_LOST_AFTER_END`).
 * When no address is left, the rest is deferred. Every
 * message offered comes back exactly once through `onResult`, every recipient settled:
 * delivered, failed (5xx, null MX, no such domain, no MX host that exists with an address, an MX
 * only at non-public addresses) or
 * deferred (everything else).
 */
import type { Logger } from "../observe/log.ts";
import type { LossCause } from "../smtp/client/link.ts";
import { formatReplyText, reply } from "../wire/reply.ts";
import type { Reply } from "../wire/reply.ts";
import type { MessageResult, OutboundMessage, RecipientResult } from "../smtp/sender.ts";
import type { SenderTimeouts } from "../smtp/sender.ts";
import { type NameServer, type OwnHost, resolveMx } from "./mx.ts";
import { type MxTarget, openMxSession, type SessionOptions } from "./session.ts";

export { TLS_REQUIRED } from "./session.ts";

/**
 * What opportunistic TLS that fails at an address may do, decided by the message a session is
 * opened for (`DeliveryOptions.tlsPlan`; `outbound.tls: required` never goes in plaintext):
 * - "fallback": go on in plaintext at that address (a failed STARTTLS, a TLS session lost);
 * - "tls": skip the address (it counts) and try the next one under TLS; when none takes the mail
 *   it waits for its retry. Postfix's fallback waits for mail that has been queued for
 *   `minimal_backoff_time` (PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE): another MX host may
 *   do TLS, and a failure may pass;
 * - "plaintext": no STARTTLS at all (its TLS session was lost right after its end of data the
 *   last time: `TLS_LOST_AFTER_END`; else it would be deferred, perhaps arriving each time,
 *   until it expires).
 */
export type TlsPlan = "fallback" | "tls" | "plaintext";

/**
 * The reply a recipient is deferred with when its message's TLS session was lost right after its
 * end of data under opportunistic TLS (the peer may have it): the next attempt goes in plaintext.
 */
export const TLS_LOST_AFTER_END: Reply = reply(
  451,
  "4.4.2",
  "TLS session lost after the end of data (the message may have arrived); next attempt in plaintext",
);

/** Whether a recipient's stored last reply is `TLS_LOST_AFTER_END`. */
export function isTlsLostAfterEnd(lastReply: string | undefined): boolean {
  return lastReply !== undefined && lastReply.trim() === formatReplyText(TLS_LOST_AFTER_END).trim();
}

/** How to reach the world; every field but `helo` and `log` has a default. */
export interface DeliveryOptions<M extends OutboundMessage = OutboundMessage> {
  /** Our EHLO name (`outbound.helo`). */
  readonly helo: string;
  readonly log: Logger;
  /** `outbound.resolver`; default: the system's. */
  readonly nameServer?: NameServer | undefined;
  /**
   * This relay's other names and addresses (`mx_self.ts`; `helo` is always ours): an MX host that
   * is one of them is discarded with every less preferred one (RFC 5321 §5.1).
   */
  readonly self?: OwnHost | undefined;
  /**
   * `outbound.allow_private_mx`: MX hosts at loopback, private or link-local addresses are
   * connected to; default false (refused: `mx_public.ts`).
   */
  readonly allowPrivateMx?: boolean;
  /** SMTP port of MX hosts; 25 (a test may not change what a deployment would not). */
  readonly port?: number;
  readonly connectTimeoutMs?: number;
  /** `outbound.tls`; default opportunistic. */
  readonly tls?: "opportunistic" | "required";
  /** Random source for equal MX preferences. */
  readonly random?: () => number;
  /**
   * Under `opportunistic`: the `TlsPlan` of a session opened while `message` is the next one to
   * send. Default: "fallback" for every message.
   */
  readonly tlsPlan?: (message: M) => TlsPlan;
  readonly timeouts?: Partial<SenderTimeouts>;
  /** Once aborted, no further message is taken (the one in flight finishes; serve stopping). */
  readonly stop?: AbortSignal;
  /** Once aborted, the connection is dropped at once (the shutdown grace is over). */
  readonly cut?: AbortSignal;
}

/** The outcome for one message's recipients, and the host that decided it. */
export interface DeliveryResult {
  readonly recipients: readonly RecipientResult[];
  /** `name[address]` of the host that took the transaction, if one did. */
  readonly host: string | undefined;
}

/** What one batch did. */
export interface BatchSummary {
  /** Messages reported through `onResult`. */
  readonly messages: number;
  /** SMTP sessions opened (greeted and past EHLO). */
  readonly sessions: number;
}

const SMTP_PORT = 25;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/**
 * Addresses tried per attempt, as Postfix's smtp_mx_address_limit: each may take 30 s to
 * connect and 5 minutes for its greeting and again for EHLO, so a domain whose MX hosts are dead
 * or tarpits would otherwise hold a delivery slot for hours; the rest waits for the retry.
 */
export const MAX_MX_ADDRESSES = 5;
/**
 * Addresses whose connect fails at once for want of a route (`isNoRoute`: the IPv6 addresses of
 * dual-stack MX hosts, on a host without IPv6 routing or with IPv6 switched off) do not count
 * towards MAX_MX_ADDRESSES; they cost no time. Postfix counts them (it expects
 * `inet_protocols = ipv4` there). After the first, no other address of its family is tried in
 * that attempt: it would fail the same way (a hostile MX host may list hundreds). A host
 * unreachable (EHOSTUNREACH) counts: session.ts.
 */
/**
 * How a session under opportunistic TLS must be lost to go on in plaintext: Postfix's
 * PLAINTEXT_FALLBACK_OK_AFTER_TLS_SESSION_FAILURE (end of stream or a timeout under TLS; a TLS
 * error reads as one). A 421 is the server's answer, and a local loss is ours.
 */
const TLS_SESSION_FAILURES: ReadonlySet<LossCause | undefined> = new Set([
  "eof",
  "timeout",
  "write",
]);

/** Delivers `message` (whose recipients are all in `domain`). Never throws for peer faults. */
export async function deliverToDomain(
  domain: string,
  message: OutboundMessage,
  opts: DeliveryOptions,
): Promise<DeliveryResult> {
  let result: DeliveryResult | undefined;
  await deliverBatch(domain, [message], opts, (_, r) => {
    result = r;
  });
  // deliverBatch reports every message it takes, and nothing stops it before the first.
  return result ?? settleAll(message, "deferred", reply(451, "4.3.0", "Not attempted"), undefined);
}

/**
 * Delivers `messages` (all for `domain`), reporting each with `onResult` once its recipients
 * are settled. Messages not taken (`stop` aborted) are not reported. Throws only what the
 * message source throws (the queue), after closing the connection.
 */
export async function deliverBatch<M extends OutboundMessage>(
  domain: string,
  messages: AsyncIterable<M> | Iterable<M>,
  opts: DeliveryOptions<M>,
  onResult: (message: M, result: DeliveryResult) => Promise<void> | void,
): Promise<BatchSummary> {
  const feed = new Feed(messages, opts.stop);
  let reported = 0;
  let sessions = 0;
  const report = async (message: M, result: DeliveryResult) => {
    feed.reported(message);
    reported++;
    await onResult(message, result);
  };
  /** Every message left gets the same outcome (DNS verdict, or no host answered). */
  const settleRest = async (outcome: RecipientResult["outcome"], r: Reply) => {
    for (;;) {
      const message = await feed.next();
      if (message === undefined) return;
      await report(message, settleAll(message, outcome, r, undefined));
    }
  };
  try {
    const mx = await resolveMx(domain, {
      nameServer: opts.nameServer,
      self: {
        names: [opts.helo, ...opts.self?.names ?? []],
        addresses: opts.self?.addresses ?? [],
      },
      ...(opts.random ? { random: opts.random } : {}),
      ...(opts.allowPrivateMx === true ? { allowPrivate: true } : {}),
    });
    if (mx.kind === "permanent") {
      // RFC 7504 §3: 556 is "domain does not accept mail", what a null MX says.
      const r = mx.reason === "null_mx"
        ? reply(556, mx.status, "Domain does not accept mail (null MX)")
        : mx.reason === "mx_loop"
        ? reply(554, mx.status, `Mail for ${domain} loops back to myself (its best MX is us)`)
        : mx.reason === "private_address"
        ? reply(554, mx.status, `Mail servers of ${domain} are not at a public address`)
        : mx.reason === "no_such_host"
        ? reply(550, mx.status, `Host or domain name not found: no MX host of ${domain} exists`)
        : mx.reason === "no_host_address"
        ? reply(550, mx.status, `Host found but no address record: no MX host of ${domain} has one`)
        : reply(550, mx.status, "Domain has no mail server");
      if (mx.reason === "mx_loop") opts.log.warn("outbound_mx_loop", { domain });
      if (mx.reason === "private_address") opts.log.warn("outbound_mx_private", { domain });
      await settleRest("failed", r);
      return { messages: reported, sessions };
    }
    if (mx.kind === "temporary") {
      opts.log.info("outbound_dns_failed", { domain, reason: mx.reason, detail: mx.detail });
      await settleRest("deferred", reply(451, mx.status, "Mail server lookup failed"));
      return { messages: reported, sessions };
    }
    const targets: MxTarget[] = mx.hosts.flatMap((h) =>
      h.addresses.map((address) => ({ name: h.name, address }))
    );
    const sessionOpts: SessionOptions = {
      helo: opts.helo,
      log: opts.log,
      port: opts.port ?? SMTP_PORT,
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      tls: opts.tls ?? "opportunistic",
      ...(opts.timeouts !== undefined ? { timeouts: opts.timeouts } : {}),
    };
    let last: Reply = reply(451, "4.4.1", "No mail server answered");
    let cursor = 0;
    /** Addresses tried so far (MAX_MX_ADDRESSES), and whether the cursor's is one of them. */
    let tried = 0;
    let isCursorCounted = false;
    const nextAddress = () => {
      cursor++;
      isCursorCounted = false;
    };
    /** Address families (4, 6) whose connect failed for want of a route (`isNoRoute`). */
    const noRoute = new Set<4 | 6>();
    /** Addresses whose TLS session failed in this batch: plaintext from then on. */
    const plainAt = new Set<number>();
    // Each turn moves the cursor on, settles at least one message or adds the cursor to
    // plainAt (once per address): it ends.
    while (cursor < targets.length && await feed.hasMore()) {
      const target = targets[cursor] as MxTarget; // cursor < targets.length
      const family = target.address.includes(":") ? 6 : 4;
      if (noRoute.has(family)) {
        // Its family has no route from here: it would fail at once as the first one did.
        nextAddress();
        continue;
      }
      if (!isCursorCounted) {
        if (tried >= MAX_MX_ADDRESSES) break;
        tried++;
        isCursorCounted = true;
      }
      const head = feed.head();
      const plan: TlsPlan = sessionOpts.tls === "opportunistic" && head !== undefined
        ? opts.tlsPlan?.(head) ?? "fallback"
        : "fallback";
      const opened = await openMxSession(target, sessionOpts, {
        plaintext: plainAt.has(cursor) || plan === "plaintext",
        fallback: plan !== "tls",
      });
      if (opened.kind === "skipped") {
        // Unreachable from here without a packet sent: the next address takes its place, and
        // no other address of its family is tried in this attempt.
        if (opened.isNoRoute === true) {
          tried--;
          noRoute.add(family);
        }
        opts.log.info("outbound_host_skipped", {
          domain,
          host: `${target.name}[${target.address}]`,
          reply: opened.reason,
        });
        last = opened.reply;
        nextAddress();
        continue;
      }
      sessions++;
      const { session } = opened;
      const onCut = () => session.conn.destroy();
      opts.cut?.addEventListener("abort", onCut);
      let hasSettled = false;
      let lostReply: Reply | undefined;
      let isLost: boolean;
      /** The opportunistic TLS session failed (not a 421, not our own cut). */
      const isTlsLost = () =>
        session.isTls && sessionOpts.tls === "opportunistic" &&
        TLS_SESSION_FAILURES.has(session.sender.lossCause);
      /** The TLS session failed: what it did not send goes on in plaintext at this address. */
      const isTlsFailure = () => isTlsLost() && plan !== "tls";
      try {
        const sent = await session.sender.sendMany(
          feed.session(),
          async (m, got: MessageResult) => {
            let r = got;
            if (r.recipients.some((x) => x.outcome !== "deferred")) hasSettled = true;
            if (r.connectionLost && r.isEndSent && isTlsLost()) {
              // The peer may have it: its next attempt goes in plaintext (TlsPlan "plaintext").
              r = {
                ...r,
                recipients: r.recipients.map((x) =>
                  x.outcome === "deferred" ? { ...x, reply: TLS_LOST_AFTER_END } : x
                ),
              };
            }
            if (r.connectionLost) {
              // The reply the peer's loss gave (the rest must not be marked TLS_LOST_AFTER_END).
              lostReply = got.recipients.find((x) => x.outcome === "deferred")?.reply;
              // Not reported: reclaimed below and offered to the plaintext session. Only when the
              // peer cannot have it (no end of data went out) and nothing of it was decided.
              if (
                isTlsFailure() && !r.isEndSent &&
                !r.recipients.some((x) => x.outcome !== "deferred")
              ) {
                return;
              }
            }
            await report(m, { recipients: r.recipients, host: session.where });
          },
        );
        isLost = sent.connectionLost;
      } finally {
        opts.cut?.removeEventListener("abort", onCut);
        feed.reclaim();
        if (session.sender.isConnectionLost) session.conn.destroy();
        await session.close();
      }
      if (!isLost) break;
      opts.log.info("outbound_session_lost", { domain, host: session.where });
      last = lostReply ?? reply(451, "4.4.2", "Connection lost");
      if (isTlsFailure() && !opts.cut?.aborted && await feed.hasMore()) {
        opts.log.info("outbound_tls_fallback", {
          host: session.where,
          reason: `session under TLS: ${session.sender.lossReason ?? "connection lost"}`,
        });
        plainAt.add(cursor);
        continue;
      }
      // A host that took mail is asked again for the rest; one that took nothing is not.
      if (!hasSettled) nextAddress();
      if (opts.cut?.aborted) break;
    }
    await settleRest("deferred", last);
  } finally {
    await feed.close();
  }
  return { messages: reported, sessions };
}

/**
 * The batch's messages, handed to one session after another: a message a session took but
 * never reported (taken ahead when the connection was lost) is offered again to the next.
 */
class Feed<M> {
  readonly #iterator: Iterator<M> | AsyncIterator<M>;
  readonly #stop: AbortSignal | undefined;
  /** Taken from the source, not yet given out again. */
  readonly #pending: M[] = [];
  /** Given to the current session and not yet reported. */
  readonly #outstanding = new Set<M>();
  #isExhausted = false;

  constructor(messages: AsyncIterable<M> | Iterable<M>, stop: AbortSignal | undefined) {
    this.#iterator = Symbol.asyncIterator in messages
      ? messages[Symbol.asyncIterator]()
      : messages[Symbol.iterator]();
    this.#stop = stop;
  }

  /** The next message, or undefined at the end or once stopped. */
  async next(): Promise<M | undefined> {
    if (this.#stop?.aborted) return undefined;
    const pending = this.#pending.shift();
    if (pending !== undefined) return pending;
    if (this.#isExhausted) return undefined;
    const r = await this.#iterator.next();
    if (r.done) {
      this.#isExhausted = true;
      return undefined;
    }
    return r.value;
  }

  /** True when another message would be given out (it is kept for the next taker). */
  async hasMore(): Promise<boolean> {
    const m = await this.next();
    if (m === undefined) return false;
    this.#pending.unshift(m);
    return true;
  }

  /** The message `next()` gives out next, once `hasMore()` said there is one. */
  head(): M | undefined {
    return this.#pending[0];
  }

  /** A view for one session; `reclaim()` once it is over. */
  async *session(): AsyncGenerator<M> {
    for (;;) {
      const m = await this.next();
      if (m === undefined) return;
      this.#outstanding.add(m);
      yield m;
    }
  }

  /** What the session took and did not report goes back in front, in order. */
  reclaim(): void {
    this.#pending.unshift(...this.#outstanding);
    this.#outstanding.clear();
  }

  reported(m: M): void {
    this.#outstanding.delete(m);
  }

  async close(): Promise<void> {
    if (this.#isExhausted) return;
    this.#isExhausted = true;
    const it = this.#iterator;
    if (typeof it.return === "function") await it.return();
  }
}

function settleAll(
  message: OutboundMessage,
  outcome: RecipientResult["outcome"],
  r: Reply,
  host: string | undefined,
): DeliveryResult {
  return { recipients: message.recipients.map((x) => ({ id: x.id, outcome, reply: r })), host };
}
