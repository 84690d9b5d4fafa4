/**
 * SMTP/LMTP client role on a connection it is handed (the provider after ATRN, the customer's
 * local-MTA sink): greeting, EHLO/LHLO (HELO fallback), one transaction per message with
 * PIPELINING when offered (sendMany also pipelines the next envelope behind each body),
 * streamed dot-stuffed body, per-recipient outcomes (PROTOCOL.md §4.8).
 * Never throws for peer behaviour; after a lost connection every unsettled recipient is
 * deferred. It never opens, and only on failure closes, the connection.
 */
import { concatBytes } from "../wire/bytes.ts";
import type { Conn } from "../net/conn.ts";
import { TimeoutError } from "../net/conn.ts";
import type { LineReader } from "../wire/line_reader.ts";
import type { Reply } from "../wire/reply.ts";
import { formatReplyText } from "../wire/reply.ts";
import { type Capabilities, heloCapabilities, parseEhloReply } from "../wire/ehlo.ts";
import { DotStuffer } from "../wire/dot_stuffer.ts";
import type { MessageParams, SettleOutcome } from "../queue/types.ts";
import type { Logger } from "../observe/log.ts";
import { readReply } from "./reply_reader.ts";
import { type OutboundRecipient, planEnvelope } from "./_sender_commands.ts";
import {
  LOCAL_BARE_NEWLINE,
  LOCAL_BODY_FAILED,
  LOCAL_CONNECTION_LOST,
  LOCAL_PROTOCOL_ERROR,
  LOCAL_TIMED_OUT,
} from "./_sender_replies.ts";
import { RecipientLedger } from "./_sender_ledger.ts";

export type { OutboundRecipient } from "./_sender_commands.ts";
export type { Capabilities } from "../wire/ehlo.ts";

/** How long to wait for each reply (client side, RFC 5321 §4.5.3.2). */
export interface SenderTimeouts {
  readonly greetingMs: number;
  readonly ehloMs: number;
  readonly mailMs: number;
  readonly rcptMs: number;
  readonly dataInitMs: number;
  /** Per body write (send progress). */
  readonly dataBlockMs: number;
  /** For the reply after `.` (per recipient under LMTP). */
  readonly dataFinalMs: number;
  /** For the 221 after QUIT (not in the RFC; the session is over anyway). */
  readonly quitMs: number;
}

/** RFC 5321 §4.5.3.2 minimums: 5, 5, 5, 5, 2, 3, 10 minutes. */
export const DEFAULT_SENDER_TIMEOUTS: SenderTimeouts = {
  greetingMs: 5 * 60_000,
  ehloMs: 5 * 60_000,
  mailMs: 5 * 60_000,
  rcptMs: 5 * 60_000,
  dataInitMs: 2 * 60_000,
  dataBlockMs: 3 * 60_000,
  dataFinalMs: 10 * 60_000,
  quitMs: 30_000,
};

/** How the sender speaks. */
export interface SenderOptions {
  /** Our name for EHLO/LHLO/HELO. */
  readonly hostname: string;
  readonly protocol: "smtp" | "lmtp";
  /** Write each line on its own with `flush` (one TLS record per line, for fetchmail). */
  readonly lineRecords: boolean;
  readonly timeouts?: Partial<SenderTimeouts>;
}

/** One message to send. */
export interface OutboundMessage {
  /** Reverse-path without brackets; "" for `<>`. */
  readonly mailFrom: string;
  readonly params: MessageParams;
  /** Body size in octets (for SIZE=). */
  readonly size: number;
  readonly recipients: readonly OutboundRecipient[];
  /**
   * Body bytes as stored (not dot-stuffed), streamed in order. A yielded chunk must stay
   * unchanged afterwards: the sender may hold it back to join it with the next write.
   */
  readonly body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

/** How one recipient ended, with the reply that decided it (the peer's or a local one). */
export interface RecipientResult {
  readonly id: number;
  readonly outcome: SettleOutcome;
  readonly reply: Reply;
}

/** Result of one message: every recipient settled once, in the message's order. */
export interface MessageResult {
  readonly recipients: RecipientResult[];
  /** The connection is unusable after this (421, timeout, EOF, broken framing). */
  readonly connectionLost: boolean;
}

type SenderState =
  | { readonly kind: "connected" }
  | { readonly kind: "greeted" }
  | { readonly kind: "ready"; readonly caps: Capabilities }
  | { readonly kind: "lost"; readonly reply: Reply }
  | { readonly kind: "closed" };

/** A reply, or the connection ended while waiting for it (then `reply` explains why). */
type Answer =
  | { readonly kind: "reply"; readonly reply: Reply }
  | { readonly kind: "lost"; readonly reply: Reply };

/** How the envelope phase ended. */
type EnvelopeEnd =
  | { readonly kind: "data"; readonly accepted: readonly number[] }
  | { readonly kind: "done" }
  | { readonly kind: "lost" };

const encoder = new TextEncoder();

/** Body bytes joined into one write (without lineRecords) before it goes out. */
const BODY_WRITE_BYTES = 64 * 1024;

/** The envelope of one transaction, planned; recipients not in `toSend` are settled. */
interface PlannedSend {
  readonly kind: "send";
  readonly mailLine: string;
  /** RCPT lines, one per entry of `toSend` (recipient positions). */
  readonly rcptLines: readonly string[];
  readonly toSend: readonly number[];
}

/** `none`: every recipient was settled without I/O (nothing can be offered to this peer). */
type Planned = { readonly kind: "none" } | PlannedSend;

/** A message taken ahead by sendMany: planned, and maybe already on the wire. */
interface Pipelined {
  readonly ledger: RecipientLedger;
  readonly planned: Planned;
  /** Its MAIL/RCPT/DATA went out behind the previous body. */
  isWritten: boolean;
}

/** The next message taken by sendMany's lookahead. */
interface AheadMessage<M> extends Pipelined {
  readonly message: M;
}

/** sendMany's view of the next message, for the transaction in flight. */
interface Lookahead {
  /** Takes and plans the next message (no I/O), while replies are awaited. Never rejects. */
  prepare(): Promise<void>;
  /** The prepared message's envelope lines, to write right behind "."; marks them written. */
  follow(): Uint8Array[];
}

/** The SMTP/LMTP client role. */
export class SmtpSender {
  readonly #conn: Conn;
  readonly #reader: LineReader;
  readonly #log: Logger;
  readonly #opts: SenderOptions;
  readonly #timeouts: SenderTimeouts;
  #state: SenderState = { kind: "connected" };

  constructor(args: { conn: Conn; reader: LineReader; log: Logger; options: SenderOptions }) {
    this.#conn = args.conn;
    this.#reader = args.reader;
    this.#log = args.log;
    this.#opts = args.options;
    this.#timeouts = { ...DEFAULT_SENDER_TIMEOUTS, ...definedOnly(args.options.timeouts) };
  }

  /** What the peer offered, once `hello()` succeeded. */
  get capabilities(): Capabilities | undefined {
    return this.#state.kind === "ready" ? this.#state.caps : undefined;
  }

  /** True once the connection can no longer be used (it has been destroyed). */
  get isConnectionLost(): boolean {
    return this.#state.kind === "lost";
  }

  /** Reads the greeting. A non-220 reply is returned as is; the caller decides (then `quit()`). */
  async greet(): Promise<Reply> {
    this.#expect("connected", "greet");
    const answer = await this.#read(this.#timeouts.greetingMs);
    if (answer.kind === "reply" && answer.reply.code === 220) {
      this.#setState({ kind: "greeted" });
    }
    return answer.reply;
  }

  /**
   * EHLO (LHLO under LMTP); under SMTP a 5xx falls back to HELO. Returns the capabilities, or
   * the refusing reply (a local 421 when the connection was lost).
   */
  async hello(): Promise<Capabilities | Reply> {
    this.#expect("greeted", "hello");
    const verb = this.#opts.protocol === "lmtp" ? "LHLO" : "EHLO";
    const ehlo = await this.#exchange(`${verb} ${this.#opts.hostname}`, this.#timeouts.ehloMs);
    if (ehlo.kind === "lost") return ehlo.reply;
    if (ehlo.reply.code === 250) {
      const caps = parseEhloReply(ehlo.reply);
      this.#setState({ kind: "ready", caps });
      return caps;
    }
    // RFC 5321 §4.1.4: a server that rejects EHLO may still speak HELO. LMTP has no HELO.
    if (this.#opts.protocol === "lmtp" || ehlo.reply.code < 500) return ehlo.reply;
    const helo = await this.#exchange(`HELO ${this.#opts.hostname}`, this.#timeouts.ehloMs);
    if (helo.kind === "lost") return helo.reply;
    if (helo.reply.code !== 250) return helo.reply;
    const caps = heloCapabilities(helo.reply);
    this.#setState({ kind: "ready", caps });
    return caps;
  }

  /** Runs one transaction. After `connectionLost`, later calls defer everything without I/O. */
  send(message: OutboundMessage): Promise<MessageResult> {
    return this.#sendOne(message, undefined, undefined);
  }

  /**
   * Sends messages one after the other and reports each result, in order, once its final
   * reply was read. Under SMTP with PIPELINING the next message is taken (and planned) while
   * the current envelope's replies travel, and its MAIL/RCPT/DATA go out right after the
   * current body's "." (RFC 2920 §3.1: message content may open a group), before its final
   * reply is read; a message whose envelope went out is always reported, deferred if the
   * connection was lost first. Stops at a lost connection; messages not offered are left
   * untouched (not reported).
   */
  async sendMany<M extends OutboundMessage>(
    messages: AsyncIterable<M> | Iterable<M>,
    onResult: (message: M, result: MessageResult) => Promise<void> | void,
  ): Promise<{ readonly sent: number; readonly connectionLost: boolean }> {
    const iterator = Symbol.asyncIterator in messages
      ? messages[Symbol.asyncIterator]()
      : messages[Symbol.iterator]();
    let sent = 0;
    let isExhausted = false;
    let ahead: AheadMessage<M> | undefined;
    let sourceError: { readonly error: unknown } | undefined;
    const state = this.#state;
    const lookahead: Lookahead | undefined =
      state.kind === "ready" && state.caps.pipelining && this.#opts.protocol === "smtp"
        ? {
          prepare: async () => {
            if (ahead !== undefined || isExhausted || sourceError !== undefined) return;
            let next: IteratorResult<M>;
            try {
              next = await iterator.next();
            } catch (error) {
              // Reported after the message in flight is settled.
              sourceError = { error };
              isExhausted = true;
              return;
            }
            if (next.done) {
              isExhausted = true;
              return;
            }
            const ledger = new RecipientLedger(next.value.recipients);
            const planned = this.#plan(next.value, state.caps, ledger);
            ahead = { message: next.value, ledger, planned, isWritten: false };
          },
          follow: () => {
            if (ahead === undefined || ahead.planned.kind !== "send") return [];
            ahead.isWritten = true;
            return envelopeLines(ahead.planned);
          },
        }
        : undefined;
    try {
      for (;;) {
        let message: M;
        let pipelined: Pipelined | undefined;
        if (ahead !== undefined) {
          // Taken but never offered: like a message not taken at all, it stays untouched.
          if (!ahead.isWritten && this.isConnectionLost) break;
          message = ahead.message;
          pipelined = ahead;
          ahead = undefined;
        } else {
          if (isExhausted || this.isConnectionLost) break;
          const next = await iterator.next();
          if (next.done) {
            isExhausted = true;
            break;
          }
          message = next.value;
        }
        const result = await this.#sendOne(message, pipelined, lookahead);
        sent++;
        await onResult(message, result);
        // A message already on the wire is still reported (deferred) on the next turn.
        if (result.connectionLost && ahead === undefined) break;
      }
    } finally {
      if (!isExhausted) await closeIterator(iterator);
    }
    if (sourceError !== undefined) throw sourceError.error;
    return { sent, connectionLost: this.isConnectionLost };
  }

  /** QUIT and a bounded wait for 221. Never throws; leaves closing the Conn to the caller. */
  async quit(): Promise<void> {
    const kind = this.#state.kind;
    if (kind === "lost" || kind === "closed") return;
    const answer = await this.#exchange("QUIT", this.#timeouts.quitMs);
    if (answer.kind === "reply" && answer.reply.code !== 221) {
      this.#log.debug("smtp.sender.quit_reply", { reply: formatReplyText(answer.reply).trim() });
    }
    // #exchange may have lost the connection meanwhile; then it stays "lost".
    if (!this.isConnectionLost) this.#setState({ kind: "closed" });
  }

  async #sendOne(
    message: OutboundMessage,
    pipelined: Pipelined | undefined,
    lookahead: Lookahead | undefined,
  ): Promise<MessageResult> {
    const ledger = pipelined?.ledger ?? new RecipientLedger(message.recipients);
    const state = this.#state;
    if (state.kind === "lost" || state.kind === "closed") {
      const why = state.kind === "lost" ? state.reply : LOCAL_CONNECTION_LOST;
      ledger.settleRest("deferred", why);
      return { recipients: ledger.results(), connectionLost: true };
    }
    if (state.kind !== "ready") throw new Error(`SmtpSender.send() in state ${state.kind}`);
    const planned = pipelined?.planned ?? this.#plan(message, state.caps, ledger);
    if (planned.kind === "send") {
      let preparing: Promise<void> | undefined;
      const envelope = state.caps.pipelining
        ? await this.#envelopePipelined(planned, ledger, pipelined?.isWritten === true, () => {
          // The next message is read and planned while this envelope's replies travel.
          preparing = lookahead?.prepare();
        })
        : await this.#envelopeLockStep(planned, ledger);
      if (envelope.kind === "lost") ledger.settleRest("deferred", this.#lostReply());
      if (envelope.kind === "data") {
        const following = lookahead === undefined ? undefined : async () => {
          await preparing;
          return lookahead.follow();
        };
        await this.#sendBody(message.body, envelope.accepted, ledger, following);
        ledger.settleRest("deferred", this.#lostReply());
      }
      await preparing;
    }
    const result = { recipients: ledger.results(), connectionLost: this.isConnectionLost };
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

  /** Decides the envelope; recipients that cannot be offered are settled here, without I/O. */
  #plan(message: OutboundMessage, caps: Capabilities, ledger: RecipientLedger): Planned {
    if (message.recipients.length === 0) return { kind: "none" };
    const plan = planEnvelope(message, caps);
    if (plan.kind === "refused") {
      ledger.settleRest("failed", plan.reply);
      return { kind: "none" };
    }
    const toSend: number[] = [];
    const rcptLines: string[] = [];
    plan.rcptLines.forEach((line, i) => {
      if (typeof line === "string") {
        toSend.push(i);
        rcptLines.push(line);
      } else {
        ledger.settle(i, "failed", line.refused);
      }
    });
    if (toSend.length === 0) return { kind: "none" };
    return { kind: "send", mailLine: plan.mailLine, rcptLines, toSend };
  }

  /** MAIL, every RCPT and DATA in one group (RFC 2920), then the replies in order. */
  async #envelopePipelined(
    planned: PlannedSend,
    ledger: RecipientLedger,
    isWritten: boolean,
    whileWaiting: () => void,
  ): Promise<EnvelopeEnd> {
    const { toSend } = planned;
    // isWritten: the lines went out behind the previous message's body (sendMany).
    if (!isWritten && !(await this.#writeGroup(envelopeLines(planned), this.#timeouts.mailMs))) {
      return { kind: "lost" };
    }
    whileWaiting();
    const mail = await this.#read(this.#timeouts.mailMs);
    if (mail.kind === "lost") return { kind: "lost" };
    const isMailAccepted = this.#settleAfterMail(mail.reply, toSend, ledger);
    if (isMailAccepted === undefined) return { kind: "lost" };
    const accepted: number[] = [];
    for (const i of toSend) {
      const rcpt = await this.#read(this.#timeouts.rcptMs);
      if (rcpt.kind === "lost") return { kind: "lost" };
      // After a refused MAIL the RCPT replies (503s) are read only to stay in step.
      if (isMailAccepted && !this.#settleRcpt(rcpt.reply, i, ledger, accepted)) {
        return { kind: "lost" };
      }
    }
    const data = await this.#read(this.#timeouts.dataInitMs);
    if (data.kind === "lost") return { kind: "lost" };
    if (data.reply.code === 354) {
      if (accepted.length > 0) return { kind: "data", accepted };
      // PROTOCOL.md §4.8: DATA went out with the group and got 354 anyway: send just ".".
      if (!(await this.#writeLines(["."], this.#timeouts.dataBlockMs))) return { kind: "lost" };
      const end = await this.#read(this.#timeouts.dataFinalMs);
      return end.kind === "lost" ? { kind: "lost" } : { kind: "done" };
    }
    if (accepted.length > 0 && !this.#settleAll(data.reply, accepted, ledger, "data")) {
      return { kind: "lost" };
    }
    if (isMailAccepted && !(await this.#reset())) return { kind: "lost" };
    return { kind: "done" };
  }

  /** MAIL, each RCPT, DATA, one reply at a time. */
  async #envelopeLockStep(planned: PlannedSend, ledger: RecipientLedger): Promise<EnvelopeEnd> {
    const { mailLine, rcptLines, toSend } = planned;
    const mail = await this.#exchange(mailLine, this.#timeouts.mailMs);
    if (mail.kind === "lost") return { kind: "lost" };
    const isMailAccepted = this.#settleAfterMail(mail.reply, toSend, ledger);
    if (isMailAccepted === undefined) return { kind: "lost" };
    if (!isMailAccepted) return { kind: "done" };
    const accepted: number[] = [];
    for (const [n, i] of toSend.entries()) {
      const rcpt = await this.#exchange(rcptLines[n] ?? "", this.#timeouts.rcptMs);
      if (rcpt.kind === "lost") return { kind: "lost" };
      if (!this.#settleRcpt(rcpt.reply, i, ledger, accepted)) return { kind: "lost" };
    }
    // PROTOCOL.md §4.8: no recipient accepted, so no DATA; RSET ends the transaction.
    if (accepted.length === 0) return (await this.#reset()) ? { kind: "done" } : { kind: "lost" };
    const data = await this.#exchange("DATA", this.#timeouts.dataInitMs);
    if (data.kind === "lost") return { kind: "lost" };
    if (data.reply.code === 354) return { kind: "data", accepted };
    if (!this.#settleAll(data.reply, accepted, ledger, "data")) return { kind: "lost" };
    return (await this.#reset()) ? { kind: "done" } : { kind: "lost" };
  }

  /** true: MAIL accepted; false: every recipient settled by the refusal; undefined: lost. */
  #settleAfterMail(
    reply: Reply,
    toSend: readonly number[],
    ledger: RecipientLedger,
  ): boolean | undefined {
    if (reply.code >= 200 && reply.code < 300) return true;
    return this.#settleAll(reply, toSend, ledger, "mail") ? false : undefined;
  }

  /** Settles one RCPT reply; false when it was out of place (the connection is then dropped). */
  #settleRcpt(reply: Reply, i: number, ledger: RecipientLedger, accepted: number[]): boolean {
    if (reply.code >= 200 && reply.code < 300) {
      accepted.push(i);
      return true;
    }
    return this.#settleAll(reply, [i], ledger, "rcpt");
  }

  /** Settles `which` by a refusal (4xx deferred, 5xx failed; 552 at RCPT is 4xx, §4.2). */
  #settleAll(
    reply: Reply,
    which: readonly number[],
    ledger: RecipientLedger,
    at: "mail" | "rcpt" | "data",
  ): boolean {
    const outcome = refusalOutcome(reply, at);
    if (outcome === undefined) {
      this.#lose(LOCAL_PROTOCOL_ERROR, `unexpected reply ${reply.code} to ${at.toUpperCase()}`);
      return false;
    }
    for (const i of which) ledger.settle(i, outcome, reply);
    return true;
  }

  /**
   * Streams the body through the dot-stuffer, then reads the final reply (or LMTP replies).
   * Without lineRecords, body pieces are joined into writes of up to BODY_WRITE_BYTES, and the
   * last one carries the end marker and whatever `lookahead` returns (the next envelope).
   */
  async #sendBody(
    body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    accepted: readonly number[],
    ledger: RecipientLedger,
    following: (() => Promise<Uint8Array[]>) | undefined,
  ): Promise<void> {
    const lineRecords = this.#opts.lineRecords;
    const stuffer = new DotStuffer({ splitLines: lineRecords });
    const iterator = Symbol.asyncIterator in body
      ? body[Symbol.asyncIterator]()
      : body[Symbol.iterator]();
    let isExhausted = false;
    let held: Uint8Array[] = [];
    let heldBytes = 0;
    try {
      for (;;) {
        let next: IteratorResult<Uint8Array>;
        try {
          next = await iterator.next();
        } catch (err) {
          isExhausted = true;
          // The body cannot be completed and "." must not follow a partial one: drop the link.
          this.#lose(LOCAL_BODY_FAILED, `reading the message body failed: ${String(err)}`);
          for (const i of accepted) ledger.settle(i, "deferred", LOCAL_BODY_FAILED);
          return;
        }
        if (next.done) {
          isExhausted = true;
          break;
        }
        const pieces = stuffer.push(next.value);
        if (stuffer.fault !== undefined) {
          this.#failBareNewline(accepted, ledger);
          return;
        }
        if (lineRecords) {
          if (!(await this.#writeBody(pieces))) return;
          continue;
        }
        for (const p of pieces) {
          held.push(p);
          heldBytes += p.length;
        }
        if (heldBytes >= BODY_WRITE_BYTES) {
          const out = held;
          held = [];
          heldBytes = 0;
          if (!(await this.#writeBody(out))) return;
        }
      }
    } finally {
      if (!isExhausted) await closeIterator(iterator);
    }
    const end = stuffer.finish();
    if (stuffer.fault !== undefined) {
      // Nothing held back was written: the peer never sees the part before the bare CR.
      this.#failBareNewline(accepted, ledger);
      return;
    }
    const tail = [...held, ...end, ...(following === undefined ? [] : await following())];
    if (!(await this.#writeBody(lineRecords ? tail : [concatBytes(tail)]))) return;

    if (this.#opts.protocol === "lmtp") {
      // RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
      for (const i of accepted) {
        const answer = await this.#read(this.#timeouts.dataFinalMs);
        if (answer.kind === "lost") return;
        if (!this.#settleFinal(answer.reply, [i], ledger)) return;
      }
      return;
    }
    const final = await this.#read(this.#timeouts.dataFinalMs);
    if (final.kind === "lost") return;
    this.#settleFinal(final.reply, accepted, ledger);
  }

  #settleFinal(reply: Reply, which: readonly number[], ledger: RecipientLedger): boolean {
    if (reply.code >= 200 && reply.code < 300) {
      for (const i of which) ledger.settle(i, "delivered", reply);
      return true;
    }
    return this.#settleAll(reply, which, ledger, "data");
  }

  /**
   * A bare CR/LF in the stored body: part of it may be on the wire already, and the end marker
   * must not follow it, so the connection is dropped (the peer discards the partial message).
   * The message can never be sent as stored, so its recipients fail (5.6.0) instead of
   * looping as deferred.
   */
  #failBareNewline(accepted: readonly number[], ledger: RecipientLedger): void {
    this.#lose(LOCAL_CONNECTION_LOST, "message body holds a bare CR or LF");
    for (const i of accepted) ledger.settle(i, "failed", LOCAL_BARE_NEWLINE);
  }

  async #reset(): Promise<boolean> {
    const answer = await this.#exchange("RSET", this.#timeouts.mailMs);
    if (answer.kind === "lost") return false;
    if (answer.reply.code >= 200 && answer.reply.code < 300) return true;
    this.#lose(LOCAL_PROTOCOL_ERROR, `RSET refused with ${answer.reply.code}`);
    return false;
  }

  async #exchange(line: string, timeoutMs: number): Promise<Answer> {
    if (!(await this.#writeLines([line], timeoutMs))) {
      return { kind: "lost", reply: this.#lostReply() };
    }
    return this.#read(timeoutMs);
  }

  /** Writes command lines: one write for the group, or one flushed write per line. */
  #writeLines(lines: readonly string[], timeoutMs: number): Promise<boolean> {
    return this.#writeGroup(encodeLines(lines), timeoutMs);
  }

  /** Writes encoded pieces as one write, or (lineRecords) one flushed write per piece. */
  #writeGroup(pieces: readonly Uint8Array[], timeoutMs: number): Promise<boolean> {
    if (this.#opts.lineRecords) return this.#writeEach(pieces, timeoutMs);
    return this.#writeEach([concatBytes(pieces)], timeoutMs);
  }

  #writeBody(pieces: readonly Uint8Array[]): Promise<boolean> {
    return this.#writeEach(pieces, this.#timeouts.dataBlockMs);
  }

  async #writeEach(pieces: readonly Uint8Array[], timeoutMs: number): Promise<boolean> {
    const flush = this.#opts.lineRecords;
    for (const piece of pieces) {
      if (piece.length === 0) continue;
      try {
        // Awaited one by one: a peer that reads slowly slows us down (backpressure).
        await this.#conn.write(piece, { flush, timeoutMs });
      } catch (err) {
        if (err instanceof TimeoutError) this.#lose(LOCAL_TIMED_OUT, "write timed out");
        else this.#lose(LOCAL_CONNECTION_LOST, `write failed: ${String(err)}`);
        return false;
      }
    }
    return true;
  }

  /** Reads one reply; a 421, end of stream, timeout or garbage loses the connection. */
  async #read(timeoutMs: number): Promise<Answer> {
    if (this.#state.kind === "lost") return { kind: "lost", reply: this.#state.reply };
    const result = await readReply(this.#reader, { timeoutMs });
    switch (result.kind) {
      case "reply":
        // RFC 5321 §3.8: 421 may come at any time and means the server is closing.
        if (result.reply.code === 421) {
          this.#lose(result.reply, "peer sent 421");
          return { kind: "lost", reply: result.reply };
        }
        return result;
      case "eof":
        this.#lose(LOCAL_CONNECTION_LOST, "connection closed by peer");
        return { kind: "lost", reply: LOCAL_CONNECTION_LOST };
      case "timeout":
        this.#lose(LOCAL_TIMED_OUT, "timed out waiting for a reply");
        return { kind: "lost", reply: LOCAL_TIMED_OUT };
      case "invalid":
        this.#lose(LOCAL_PROTOCOL_ERROR, `malformed reply: ${result.reason}`);
        return { kind: "lost", reply: LOCAL_PROTOCOL_ERROR };
      default: {
        const never: never = result;
        throw new Error(`unreachable reply result ${JSON.stringify(never)}`);
      }
    }
  }

  #lostReply(): Reply {
    return this.#state.kind === "lost" ? this.#state.reply : LOCAL_CONNECTION_LOST;
  }

  /** Marks the connection unusable and drops it (the reader's state is unknown now). */
  #lose(reply: Reply, reason: string): void {
    if (this.#state.kind === "lost") return;
    this.#log.warn("smtp.sender.connection_lost", { reason, conn: this.#conn.id });
    this.#setState({ kind: "lost", reply });
    this.#conn.destroy();
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

/** 4xx → deferred, 5xx → failed (552 at RCPT → deferred); anything else is out of place. */
function refusalOutcome(
  reply: Reply,
  at: "mail" | "rcpt" | "data",
): "deferred" | "failed" | undefined {
  if (reply.code >= 400 && reply.code < 500) return "deferred";
  // PROTOCOL.md §4.2: RFC 821 used 552 for "too many recipients"; treat it as temporary.
  if (at === "rcpt" && reply.code === 552) return "deferred";
  if (reply.code >= 500 && reply.code < 600) return "failed";
  return undefined;
}

async function closeIterator<T>(iterator: Iterator<T> | AsyncIterator<T>): Promise<void> {
  try {
    await iterator.return?.();
  } catch {
    // The body source failing to clean up does not change the outcome already decided.
  }
}

function encodeLines(lines: readonly string[]): Uint8Array[] {
  return lines.map((l) => encoder.encode(`${l}\r\n`));
}

/** MAIL, every RCPT and DATA: one RFC 2920 group. */
function envelopeLines(planned: PlannedSend): Uint8Array[] {
  return encodeLines([planned.mailLine, ...planned.rcptLines, "DATA"]);
}

function definedOnly(t: Partial<SenderTimeouts> | undefined): Partial<SenderTimeouts> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(t ?? {})) if (typeof v === "number") out[k] = v;
  return out;
}
