/**
 * The bounce rules, in one place for expiry, the ODMR drain and the outbound worker: who gets a
 * DSN (RFC 3464) and by which route. Never for `<>` (no bounce of a bounce, RFC 5321 §6.1);
 * only for recipients whose NOTIFY asks for it (RFC 3461 §4.1); to a sender in one of our
 * domains on route "atrn" (its owner collects it), to a foreign sender on route "mx" while the
 * node's foreign-bounce limit allows (a flood of bounces to forged senders is backscatter),
 * else dropped and logged. `bounceFailed` queues the report for recipients settled as failed.
 */
import { domainToAscii } from "../wire/idna.ts";
import type { Logger } from "../observe/log.ts";
import { buildFailureDsn, type DsnRecipient, type FailureDsnInput, headerBlock } from "./dsn.ts";
import type { MessageParams, QueuedMessage, QueueStore, Route } from "./types.ts";

/** Header bytes returned in a DSN at most (RET=HDRS, the default). */
export const MAX_RETURNED_HEADER_BYTES = 64 * 1024;
/** RET=FULL returns the whole message only up to this size; bigger ones get headers only. */
export const MAX_RETURNED_FULL_BYTES = 64 * 1024;
/** How much of the body a report may need (the caller reads at most this much). */
export const MAX_PREFIX_BYTES = Math.max(MAX_RETURNED_HEADER_BYTES, MAX_RETURNED_FULL_BYTES);
/** Bounces to foreign senders per hour and node, by default. */
export const DEFAULT_FOREIGN_BOUNCES_PER_HOUR = 100;
const HOUR_MS = 3_600_000;
const STATUS_RE = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})(?:\s|$)/;

/**
 * How many bounces to foreign senders this node may still send: at most `perHour` in any
 * hour (a sliding window over the times of those sent). In memory: a restart starts afresh.
 * The window is on the monotonic clock (`performance.now()`): a stepped wall clock neither
 * refills the allowance nor holds it for longer.
 */
export class BounceLimiter {
  readonly #perHour: number;
  readonly #now: () => number;
  #sent: number[] = [];

  constructor(
    perHour = DEFAULT_FOREIGN_BOUNCES_PER_HOUR,
    now: () => number = () => performance.now(),
  ) {
    if (!Number.isSafeInteger(perHour) || perHour < 0) {
      throw new RangeError(`perHour must be a non-negative integer: current value is ${perHour}`);
    }
    this.#perHour = perHour;
    this.#now = now;
  }

  /** Bounces that may go now. */
  available(): number {
    this.#forgetOld();
    return this.#perHour - this.#sent.length;
  }

  /** Takes one if available; false when the hour's allowance is spent. */
  tryTake(): boolean {
    if (this.available() <= 0) return false;
    this.#sent.push(this.#now());
    return true;
  }

  /** Records `n` bounces sent on a budget handed out earlier (a maintenance pass). */
  spend(n: number): void {
    const now = this.#now();
    for (let i = 0; i < n; i++) this.#sent.push(now);
  }

  #forgetOld(): void {
    const since = this.#now() - HOUR_MS;
    let drop = 0;
    while (drop < this.#sent.length && (this.#sent[drop] ?? 0) <= since) drop++;
    if (drop > 0) this.#sent = this.#sent.slice(drop);
  }
}

let nodeLimiter: BounceLimiter | undefined;

/** The process's limiter (one `serve` is one node): shared by the drain, worker and expiry. */
export function nodeBounceLimiter(): BounceLimiter {
  nodeLimiter ??= new BounceLimiter();
  return nodeLimiter;
}

/** Where a report goes, or why it does not. */
export type BounceDecision =
  | { readonly kind: "send"; readonly route: Route; readonly to: string; readonly domain: string }
  | { readonly kind: "none" }
  | { readonly kind: "dropped"; readonly reason: "rate_limited" | "bad_sender" };

/**
 * The route of a report to `mailFrom`: none for `<>`; "atrn" for one of our domains; "mx" for
 * a foreign one when `allowForeign()` grants it (it is asked only then, and consumes).
 */
export function bounceRoute(
  mailFrom: string,
  isLocalDomain: (domain: string) => boolean,
  allowForeign: () => boolean,
): BounceDecision {
  if (mailFrom === "") return { kind: "none" };
  const domain = domainOf(mailFrom);
  if (domain === undefined) return { kind: "dropped", reason: "bad_sender" };
  // A local part naming another host (`%`, `!`, quoted `@`) is refused as a recipient at the
  // MX (src/smtp/sinks/queue_sink.ts): a report to it would make the customer's MTA relay.
  if (/[%!@]/.test(mailFrom.slice(0, mailFrom.lastIndexOf("@")))) {
    return { kind: "dropped", reason: "bad_sender" };
  }
  if (isLocalDomain(domain)) return { kind: "send", route: "atrn", to: mailFrom, domain };
  if (!allowForeign()) return { kind: "dropped", reason: "rate_limited" };
  return { kind: "send", route: "mx", to: mailFrom, domain };
}

/**
 * RFC 3461 §4.1: NEVER, or a list without the word, means no notice. Absent NOTIFY means
 * FAILURE, and DELAY at our discretion: we send the delay notice then too.
 */
export function wantsNotice(notify: string | undefined, kind: "FAILURE" | "DELAY"): boolean {
  if (notify === undefined) return true;
  return notify.toUpperCase().split(",").some((w) => w.trim() === kind);
}

/** How many body bytes the returned part of a report about `message` needs. */
export function prefixWanted(message: { params: MessageParams; size: number }): number {
  return returnsFull(message) ? MAX_RETURNED_FULL_BYTES : MAX_RETURNED_HEADER_BYTES;
}

/** The returned part: the whole message (RET=FULL, small enough) or its header block. */
export function returnedContent(
  message: { params: MessageParams; size: number },
  prefix: Uint8Array,
  headersOnly = false,
): { kind: "full" | "headers"; bytes: Uint8Array } {
  if (!headersOnly && returnsFull(message)) {
    return { kind: "full", bytes: prefix.subarray(0, MAX_RETURNED_FULL_BYTES) };
  }
  return { kind: "headers", bytes: headerBlock(prefix, MAX_RETURNED_HEADER_BYTES) };
}

/** What every report says about itself and the original: who reports, which message, when. */
export type ReportHead = Pick<
  FailureDsnInput,
  | "reportingMta"
  | "reportId"
  | "originalId"
  | "originalSender"
  | "envid"
  | "arrivalDate"
  | "international"
  | "date"
>;

/** The head of report `reportId` about `message`, written by `hostname` at `now`. */
export function reportHead(
  message: {
    readonly id: string;
    readonly mailFrom: string;
    readonly receivedAt: number;
    readonly params: MessageParams;
  },
  hostname: string,
  reportId: string,
  now: number,
): ReportHead {
  return {
    reportingMta: hostname,
    reportId,
    originalId: message.id,
    originalSender: message.mailFrom,
    ...(message.params.envid !== undefined ? { envid: message.params.envid } : {}),
    arrivalDate: message.receivedAt,
    ...(message.params.smtputf8 === true ? { international: true } : {}),
    date: now,
  };
}

/** MAIL FROM parameters of a report: 8BITMIME when the returned content has 8-bit bytes. */
export function reportParams(bytes: Uint8Array): MessageParams {
  for (const b of bytes) if (b >= 0x80) return { body: "8BITMIME" };
  return {};
}

/** Lower-case A-label of an address's domain, or undefined. */
export function domainOf(address: string): string | undefined {
  const at = address.lastIndexOf("@");
  if (at < 0) return undefined;
  const domain = domainToAscii(address.slice(at + 1).toLowerCase());
  return domain === "" ? undefined : domain;
}

/** The RFC 3463 status of an SMTP reply (`550 5.1.1 …` → `5.1.1`), or undefined. */
export function replyStatus(reply: string): string | undefined {
  return STATUS_RE.exec(reply)?.[1];
}

/** What bouncing needs. */
export interface BounceOptions {
  readonly store: QueueStore;
  /** Our host name (Reporting-MTA, the report's From: domain). */
  readonly hostname: string;
  /** True when some user owns `domain`. */
  readonly isLocalDomain: (domain: string) => boolean;
  /** The foreign-bounce limit; default the node's (`nodeBounceLimiter()`). */
  readonly limiter?: BounceLimiter;
  readonly now?: () => number;
}

/** One failed recipient with the reply that failed it (as settled: `554 5.6.0 …`). */
export interface FailedRecipient {
  readonly id: number;
  readonly reply: string;
}

/**
 * The report's line for a recipient refused for good with `reply` (the drain, the outbound
 * worker, and maintenance for a report left pending).
 */
export function refusedRecipient(
  r: { readonly address: string; readonly orcpt?: string | undefined },
  reply: string,
): DsnRecipient {
  return {
    address: r.address,
    ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
    lastReply: reply,
    status: replyStatus(reply) ?? "5.0.0",
  };
}

/**
 * Queues one failure report for `failed` of `message`, or says why not. Never throws. Their
 * settlement marked their report pending: the report's commit takes the mark off, as does a
 * decision against one (`<>`, NOTIFY, the foreign-bounce limit). A report that could not be
 * written keeps it: the next maintenance pass queues it (src/queue/_expiry.ts).
 */
export async function bounceFailed(
  message: QueuedMessage,
  failed: readonly FailedRecipient[],
  opts: BounceOptions & { readonly log: Logger },
): Promise<"queued" | "dropped" | "none"> {
  if (failed.length === 0) return "none";
  const reported = { messageId: message.id, recipientIds: failed.map((f) => f.id) };
  const decided = async (outcome: "dropped" | "none") => {
    await opts.store.reportDecided(reported).catch((err) => {
      opts.log.error("dsn_pending_failed", { id: message.id, error: String(err) });
    });
    return outcome;
  };
  if (message.mailFrom === "") return await decided("none");
  const notified: DsnRecipient[] = [];
  for (const f of failed) {
    const r = message.recipients.find((q) => q.id === f.id);
    if (r === undefined || !wantsNotice(r.notify, "FAILURE")) continue;
    notified.push(refusedRecipient(r, f.reply));
  }
  if (notified.length === 0) return await decided("none");
  const limiter = opts.limiter ?? nodeBounceLimiter();
  const decision = bounceRoute(message.mailFrom, opts.isLocalDomain, () => limiter.tryTake());
  if (decision.kind === "none") return await decided("none");
  if (decision.kind === "dropped") {
    opts.log.info("dsn_dropped", { id: message.id, reason: decision.reason });
    return await decided("dropped");
  }
  try {
    const { store } = opts;
    const now = (opts.now ?? Date.now)();
    const reportId = await store.newId();
    // A body that cannot be read (its file lost): the report goes without the original's content.
    const prefix = await readPrefix(store.readBody(message.id), prefixWanted(message)).catch(
      (err) => {
        opts.log.error("queue_body_unreadable", { id: message.id, reason: String(err) });
        return new Uint8Array(0);
      },
    );
    const bytes = buildFailureDsn({
      ...reportHead(message, opts.hostname, reportId, now),
      recipients: notified,
      returned: returnedContent(message, prefix),
      reason: "refused",
    });
    const writer = await store.begin({
      id: reportId,
      mailFrom: "",
      params: reportParams(bytes),
      // NOTIFY=NEVER: a report about the report is never wanted (RFC 3461 §5.2.7 spirit).
      recipients: [{
        address: decision.to,
        domain: decision.domain,
        notify: "NEVER",
        route: decision.route,
      }],
      reportOf: reported,
    });
    await writer.write(bytes);
    await writer.commit();
    opts.log.info("dsn_queued", {
      id: message.id,
      dsn: reportId,
      to_domain: decision.domain,
      route: decision.route,
    });
    return "queued";
  } catch (err) {
    // The recipients stay failed with their report pending: maintenance queues it later.
    opts.log.error("dsn_failed", { id: message.id, error: String(err) });
    return "none";
  }
}

/** The first `maxBytes` of a stored body read chunk by chunk (fewer if it is shorter). */
export async function readPrefix(
  body: AsyncIterable<Uint8Array>,
  maxBytes: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(maxBytes);
  let fill = 0;
  for await (const chunk of body) {
    const n = Math.min(chunk.length, maxBytes - fill);
    out.set(chunk.subarray(0, n), fill);
    fill += n;
    if (fill >= maxBytes) break;
  }
  return out.subarray(0, fill);
}

function returnsFull(message: { params: MessageParams; size: number }): boolean {
  return message.params.ret === "FULL" && message.size <= MAX_RETURNED_FULL_BYTES;
}
