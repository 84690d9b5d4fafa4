/**
 * The SMTP sender on a client link it is handed (the provider after ATRN; outbound delivery
 * next): greeting, EHLO (HELO fallback), one transaction per message with PIPELINING when
 * offered (sendMany also pipelines the next envelope behind each body, RFC 2920 §3.1), the
 * stored body streamed dot-stuffed, per-recipient outcomes. Envelope, body and lookahead live
 * in `_sender_envelope.ts`, `_sender_body.ts` and `_sender_lookahead.ts`. Never throws for
 * peer behaviour; after a lost link every unsettled recipient is deferred. It never opens,
 * and only on failure closes, the connection.
 */
import type { Conn, TlsClientParams, TlsUpgradeResult } from "../net/conn.ts";
import type { LineReader } from "../wire/line_reader.ts";
import type { Reply } from "../wire/reply.ts";
import type { Capabilities } from "../wire/ehlo.ts";
import type { Logger } from "../observe/log.ts";
import { ClientLink, LINK_CLOSED, type LossCause } from "./client/link.ts";
import { RecipientLedger } from "./_sender_ledger.ts";
import { type EnvelopeContext, envelopeLockStep, envelopePipelined } from "./_sender_envelope.ts";
import { type Prepared, prepareMessage } from "./_sender_check.ts";
import { sendBody } from "./_sender_body.ts";
import { type Lookahead, MessageSource, type TakenMessage } from "./_sender_lookahead.ts";
import { canUseWindow, endsAtLast, sendWindowed } from "./_sender_window.ts";
import {
  DEFAULT_SENDER_TIMEOUTS,
  type MessageResult,
  type OutboundMessage,
  type SenderTimeouts,
} from "./_sender_types.ts";

export type { OutboundRecipient } from "./_sender_commands.ts";
export type { Capabilities } from "../wire/ehlo.ts";
export { DEFAULT_SENDER_TIMEOUTS } from "./_sender_types.ts";
export type {
  MessageResult,
  OutboundMessage,
  RecipientResult,
  SenderTimeouts,
} from "./_sender_types.ts";

/** How the sender speaks. */
export interface SenderOptions {
  /** Our name for EHLO/HELO. */
  readonly hostname: string;
  /** Write each line on its own with `flush` (one TLS record per line, for fetchmail). */
  readonly lineRecords: boolean;
  /** Longest body line, CRLF included (default 1000, RFC 5321 §4.5.3.1.6). */
  readonly maxLineOctets?: number;
  readonly timeouts?: Partial<SenderTimeouts>;
  /**
   * sendMany keeps up to this many messages in flight when the peer offers CHUNKING and
   * PIPELINING (and not PRDR): BDAT needs no 354 (`_sender_window.ts`). Absent or 1: one
   * message at a time, its next envelope behind its body.
   */
  readonly window?: number;
  /** With `window`: no further message goes out while this many body octets are in flight. */
  readonly windowBytes?: number;
}

type SenderState =
  | { readonly kind: "connected" }
  | { readonly kind: "greeted" }
  | { readonly kind: "ready"; readonly caps: Capabilities }
  | { readonly kind: "closed" };

/** The SMTP client role for whole messages. */
export class SmtpSender {
  readonly #link: ClientLink;
  readonly #log: Logger;
  readonly #opts: SenderOptions;
  readonly #timeouts: SenderTimeouts;
  #state: SenderState = { kind: "connected" };

  constructor(args: { conn: Conn; reader: LineReader; log: Logger; options: SenderOptions }) {
    this.#log = args.log;
    this.#opts = args.options;
    this.#timeouts = { ...DEFAULT_SENDER_TIMEOUTS, ...definedOnly(args.options.timeouts) };
    this.#link = new ClientLink({
      conn: args.conn,
      reader: args.reader,
      log: args.log,
      options: { lineRecords: args.options.lineRecords },
    });
  }

  /** What the peer offered, once `hello()` succeeded. */
  get capabilities(): Capabilities | undefined {
    return this.#state.kind === "ready" ? this.#state.caps : undefined;
  }

  /** True once the connection can no longer be used (it has been destroyed). */
  get isConnectionLost(): boolean {
    return this.#link.isLost;
  }

  /** How the connection was lost: the peer's 421, a hang-up, a timeout… (`LossCause`). */
  get lossCause(): LossCause | undefined {
    return this.#link.loss?.cause;
  }

  /** Why the connection was lost (for logs: a failed TLS handshake, a timeout, a hang-up). */
  get lossReason(): string | undefined {
    return this.#link.loss?.reason;
  }

  /** Reads the greeting. A non-220 reply is returned as is; the caller decides (then `quit()`). */
  async greet(): Promise<Reply> {
    this.#expect("connected", "greet");
    const answer = await this.#link.greet(this.#timeouts.greetingMs);
    if (answer.kind === "lost") return answer.loss.reply;
    if (answer.reply.code === 220) this.#setState({ kind: "greeted" });
    return answer.reply;
  }

  /**
   * EHLO; a 5xx falls back to HELO. Returns the capabilities, or the refusing reply (a 421
   * when the connection was lost).
   */
  async hello(): Promise<Capabilities | Reply> {
    this.#expect("greeted", "hello");
    const hello = await this.#link.hello(this.#opts.hostname, { timeoutMs: this.#timeouts.ehloMs });
    switch (hello.kind) {
      case "ready":
        this.#setState({ kind: "ready", caps: hello.caps });
        return hello.caps;
      case "refused":
        return hello.reply;
      case "lost":
        return hello.loss.reply;
      default: {
        const never: never = hello;
        throw new Error(`unreachable hello ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * STARTTLS after `hello()` (outbound delivery, RFC 3207): on 220 the connection becomes TLS
   * and the sender is `greeted` again, so the caller says `hello()` once more (RFC 3207 §4.2).
   * Returns the TLS result, or the refusing reply (a 421 when the link was lost or the
   * handshake failed; the link is unusable then).
   */
  async startTls(params: TlsClientParams): Promise<TlsUpgradeResult | Reply> {
    this.#expect("ready", "startTls");
    const answer = await this.#link.command("STARTTLS", this.#timeouts.ehloMs);
    if (answer.kind === "lost") return answer.loss.reply;
    if (answer.reply.code !== 220) return answer.reply;
    try {
      const upgrade = await this.#link.startTls(params);
      this.#setState({ kind: "greeted" });
      return upgrade;
    } catch {
      return this.#link.loss?.reply ?? LINK_CLOSED;
    }
  }

  /** Runs one transaction. After `connectionLost`, later calls defer everything without I/O. */
  send(message: OutboundMessage): Promise<MessageResult> {
    return this.#sendOne(message, undefined, undefined);
  }

  /**
   * Sends messages one after the other and reports each result, in order, once its final
   * reply was read. With PIPELINING the next message is taken (and planned) while the
   * current envelope's replies travel, and its MAIL/RCPT/DATA go out right after the current
   * body's "." (RFC 2920 §3.1), before its final reply is read; a message whose envelope went
   * out is always reported, deferred if the connection was lost first. Stops at a lost
   * connection; messages not offered are left untouched (not reported).
   */
  async sendMany<M extends OutboundMessage>(
    messages: AsyncIterable<M> | Iterable<M>,
    onResult: (message: M, result: MessageResult) => Promise<void> | void,
  ): Promise<{ readonly sent: number; readonly connectionLost: boolean }> {
    const state = this.#state;
    const window = this.#opts.window ?? 1;
    if (state.kind === "ready" && window > 1 && canUseWindow(state.caps, this.#opts.lineRecords)) {
      const ctx = {
        link: this.#link,
        timeouts: this.#timeouts,
        window,
        windowBytes: this.#opts.windowBytes,
        lastEnds: endsAtLast(state.caps),
        prepare: (message: OutboundMessage, ledger: RecipientLedger) =>
          this.#prepare(message, state.caps, ledger),
      };
      const { sent } = await sendWindowed(ctx, messages, onResult);
      return { sent, connectionLost: this.isConnectionLost };
    }
    const source = new MessageSource<M>(
      messages,
      state.kind === "ready" && state.caps.pipelining
        ? (message, ledger) => this.#prepare(message, state.caps, ledger)
        : undefined,
    );
    let sent = 0;
    try {
      for (;;) {
        const next = await source.take(this.isConnectionLost);
        if (next === undefined) break;
        const result = await this.#sendOne(
          next.message,
          next.taken,
          source.isLookingAhead ? source : undefined,
        );
        sent++;
        await onResult(next.message, result);
        // A message already on the wire is still reported (deferred) on the next turn.
        if (result.connectionLost && !source.hasAhead) break;
      }
    } finally {
      await source.close();
    }
    source.throwIfFailed();
    return { sent, connectionLost: this.isConnectionLost };
  }

  /** QUIT and a bounded wait for 221. Never throws; leaves closing the Conn to the caller. */
  async quit(): Promise<void> {
    if (this.#link.isLost || this.#state.kind === "closed") return;
    await this.#link.quit(this.#timeouts.quitMs);
    // The link may have been lost meanwhile; then it stays lost.
    if (!this.#link.isLost) this.#setState({ kind: "closed" });
  }

  async #sendOne(
    message: OutboundMessage,
    taken: TakenMessage<OutboundMessage> | undefined,
    lookahead: Lookahead | undefined,
  ): Promise<MessageResult> {
    const ledger = taken?.ledger ?? new RecipientLedger(message.recipients);
    const state = this.#state;
    const loss = this.#link.loss;
    if (loss !== undefined || state.kind === "closed") {
      ledger.settleRest("deferred", loss?.reply ?? LINK_CLOSED);
      return { recipients: ledger.results(), connectionLost: true, isEndSent: false };
    }
    if (state.kind !== "ready") throw new Error(`SmtpSender.send() in state ${state.kind}`);
    const { planned, body } = taken ?? await this.#prepare(message, state.caps, ledger);
    if (planned.kind === "send" && body !== undefined) {
      const ctx: EnvelopeContext = { link: this.#link, timeouts: this.#timeouts };
      let preparing: Promise<void> | undefined;
      const envelope = state.caps.pipelining
        ? await envelopePipelined(ctx, planned, ledger, {
          isWritten: taken?.isWritten === true,
          // The next message is read and planned while this envelope's replies travel.
          whileWaiting: () => {
            preparing = lookahead?.prepare();
          },
        })
        : await envelopeLockStep(ctx, planned, ledger);
      if (envelope.kind === "data") {
        const following = lookahead === undefined ? undefined : async () => {
          await preparing;
          return lookahead.follow();
        };
        await sendBody(ctx, body, envelope.accepted, ledger, {
          isPrdr: planned.isPrdr,
          following,
        });
      }
      ledger.settleRest("deferred", this.#link.loss?.reply ?? LINK_CLOSED);
      await preparing;
    }
    const result = {
      recipients: ledger.results(),
      connectionLost: this.isConnectionLost,
      isEndSent: ledger.isEndSent,
    };
    const counts = ledger.counts();
    // Debug: the caller logs each message's outcome (drain: "delivered").
    this.#log.debug("smtp.sender.message", {
      recipients: message.recipients.length,
      delivered: counts.delivered,
      deferred: counts.deferred,
      failed: counts.failed,
      connectionLost: result.connectionLost,
    });
    return result;
  }

  /** Plans and checks a message before anything of it goes out (`_sender_check.ts`). */
  #prepare(
    message: OutboundMessage,
    caps: Capabilities,
    ledger: RecipientLedger,
  ): Promise<Prepared> {
    return prepareMessage(message, caps, ledger, {
      log: this.#log,
      ...(this.#opts.maxLineOctets === undefined
        ? {}
        : { maxLineOctets: this.#opts.maxLineOctets }),
    });
  }

  #expect(kind: SenderState["kind"], method: string): void {
    // Calling out of order is a bug in the caller, not peer behaviour.
    if (this.#state.kind !== kind) {
      throw new Error(`SmtpSender.${method}() in state ${this.#state.kind}`);
    }
  }

  #setState(next: SenderState): void {
    this.#log.debug("smtp.sender.state", { from: this.#state.kind, to: next.kind });
    this.#state = next;
  }
}

function definedOnly(t: Partial<SenderTimeouts> | undefined): Partial<SenderTimeouts> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(t ?? {})) if (typeof v === "number") out[k] = v;
  return out;
}
