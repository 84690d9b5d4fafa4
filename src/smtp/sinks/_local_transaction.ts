/**
 * One transaction relayed to the local SMTP/LMTP server, cut-through: MAIL (with the first
 * RCPT under PIPELINING) and each RCPT as they arrive, the body dot-stuffed in writes of up to
 * LOCAL_WRITE_BYTES, then the local reply or, under LMTP, one reply per recipient (RFC 2033
 * §4.2). Without PRDR upstream an LMTP transaction takes one recipient (`452 4.5.3` for the
 * others, `splitRecipients` counts them) so that the single upstream reply always matches.
 */
import { isPermanent, isPositive, isTransient, reply } from "../../wire/reply.ts";
import type { Reply } from "../../wire/reply.ts";
import { DotStuffer } from "../../wire/dot_stuffer.ts";
import type { MailFrom, RcptAhead, RcptTo, SinkTransaction } from "../sink.ts";
import type { Logger } from "../../observe/log.ts";
import {
  isMailOutOfStep,
  isOutOfPlace,
  LOCAL_REPLIES,
  type LocalConnection,
  type LocalSinkView,
} from "./_local_link.ts";

/** Body bytes gathered into one write to the local server. */
const LOCAL_WRITE_BYTES = 64 * 1024;
/**
 * Room after a small body (sized by SIZE=) for the next message's MAIL, RCPT and DATA, which
 * go out in the same write under PIPELINING (LocalConnection.hold).
 */
const NEXT_COMMANDS_ROOM = 512;

let txSequence = 0;

type TxState =
  | { readonly kind: "envelope" }
  | { readonly kind: "data"; readonly stuffer: DotStuffer }
  /** DATA was refused (or the link broke): body bytes are dropped, `reply` is the answer. */
  | { readonly kind: "refused"; readonly reply: Reply }
  | { readonly kind: "done" };

/** Where the local MAIL stands (PIPELINING: it is sent with the first RCPT). */
export type MailState =
  | { readonly kind: "pending"; readonly line: string }
  | { readonly kind: "accepted" }
  /** Refused locally: every recipient of this transaction gets `reply`. */
  | { readonly kind: "refused"; readonly reply: Reply };

export class LocalTransaction implements SinkTransaction {
  readonly #sink: LocalSinkView;
  /** Replaced once, by a fresh connection, when the first was out of step at MAIL. */
  #link: LocalConnection;
  #isRetried = false;
  readonly #mail: MailFrom;
  /** The sink's logger; this transaction's (with its id) is made when a line is written. */
  readonly #sinkLog: Logger;
  #txLog: Logger | undefined;
  readonly #sequence = ++txSequence;
  #id: string | undefined;
  readonly #accepted: string[] = [];
  #state: TxState = { kind: "envelope" };
  #mailState: MailState;
  /**
   * Stuffed body bytes not written yet, copied into one buffer (the only copy of the body),
   * from the link: the last body's once the socket was done with it (`LocalConnection.buffer`).
   */
  #out: Uint8Array | undefined;
  #outBytes = 0;
  #isFirstBuffer = true;
  /** The local reply to a DATA sent with the last RCPT, until that RCPT's reply is settled. */
  #pendingData: Reply | undefined;
  /**
   * LMTP under PRDR upstream: each recipient's own LMTP reply goes up (draft-hall-prdr-00), so
   * the transaction takes every recipient and one refusal holds back no other.
   */
  readonly finishEach?: () => Promise<readonly Reply[]>;
  /** Only under local PIPELINING ("." goes out with the next command). */
  readonly finishLater?: () => Promise<{ readonly reply: Promise<Reply> }>;

  constructor(
    sink: LocalSinkView,
    link: LocalConnection,
    mail: MailFrom,
    log: Logger,
    mailState: MailState,
  ) {
    this.#sink = sink;
    this.#link = link;
    this.#mail = mail;
    this.#mailState = mailState;
    this.#sinkLog = log;
    if (sink.isLmtp && mail.prdr === true) this.finishEach = () => this.#end();
    if (link.caps?.pipelining === true) this.finishLater = () => this.#finishLater();
  }

  /** Made when first asked for (a log line, a trace header): most messages never need it. */
  get id(): string {
    return this.#id ??= `L${Date.now().toString(36)}${this.#sequence.toString(36)}`;
  }

  get #log(): Logger {
    return this.#txLog ??= this.#sinkLog.with({ tx: this.id });
  }

  async addRecipient(rcpt: RcptTo, ahead?: RcptAhead): Promise<Reply> {
    if (this.#state.kind !== "envelope") return reply(503, "5.5.1", "Bad sequence of commands");
    // Without PRDR upstream one reply must stand for all: one LMTP recipient per transaction.
    if (this.#sink.isLmtp && this.#mail.prdr !== true && this.#accepted.length >= 1) {
      this.#sink.splitRecipients++;
      return LOCAL_REPLIES.oneRecipientPerTransaction;
    }
    let r = await this.#relayRecipient(
      `RCPT TO:<${rcpt.address}>`,
      ahead?.dataFollows === true && this.#link.caps?.pipelining === true,
    );
    if (isOutOfPlace(r)) r = this.#outOfStep(`RCPT answered ${r.code}`);
    if (isPositive(r)) this.#accepted.push(rcpt.address);
    else this.#log.info("local_rcpt_refused", { rcpt: rcpt.address, code: r.code });
    if (this.#pendingData !== undefined) this.#dataAnswered(this.#pendingData);
    return r;
  }

  /**
   * The local reply to one RCPT. Under PIPELINING (RFC 2920) one write carries the pending
   * MAIL, the RCPT and, when the client's DATA is next (`withData`), our DATA: one local round
   * trip for a one-recipient envelope. Every reply is read, in order, to stay in step; the
   * DATA reply waits in `#pendingData` until the recipient's own is settled.
   */
  async #relayRecipient(rcptLine: string, withData: boolean): Promise<Reply> {
    const timeoutMs = this.#sink.timeouts.commandMs;
    const mail = this.#mailState;
    if (mail.kind === "refused") return mail.reply;
    if (mail.kind === "accepted" && !withData) return await this.#link.command(rcptLine, timeoutMs);
    const lines = mail.kind === "pending" ? [mail.line, rcptLine] : [rcptLine];
    if (withData) lines.push("DATA");
    if (!(await this.#link.writeLines(lines, timeoutMs))) {
      this.#mailState = { kind: "refused", reply: LOCAL_REPLIES.unavailable };
      return LOCAL_REPLIES.unavailable;
    }
    const mailReply = mail.kind === "pending" ? await this.#link.read(timeoutMs) : undefined;
    // The replies after MAIL's are read in every case, to stay in step with the local server.
    const rcptReply = await this.#link.read(timeoutMs);
    if (withData) this.#pendingData = await this.#link.read(timeoutMs);
    if (mailReply === undefined) return rcptReply;
    if (isPositive(mailReply)) {
      this.#mailState = { kind: "accepted" };
      return rcptReply;
    }
    this.#log.warn("local_mail_refused", { to: this.#sink.where, code: mailReply.code });
    if (isMailOutOfStep(mailReply)) {
      // The link is dropped (the local side discards what it holds, a DATA it took included)
      // and the envelope goes again, once, on a fresh connection.
      const refusal = this.#outOfStep(`MAIL answered ${mailReply.code}`);
      this.#pendingData = undefined;
      const fresh = this.#isRetried ? refusal : await this.#sink.connection();
      this.#isRetried = true;
      if (!("code" in fresh)) {
        this.#link = fresh;
        return await this.#relayRecipient(rcptLine, withData && fresh.caps?.pipelining === true);
      }
      this.#mailState = { kind: "refused", reply: refusal };
      return refusal;
    }
    const refusal = mailRefusalForRecipients(mailReply);
    this.#mailState = { kind: "refused", reply: refusal };
    return refusal;
  }

  /**
   * The local reply to a DATA sent ahead with the last RCPT: the body goes out on `354`, a
   * refusal is the answer at the end. A `354` with no recipient accepted (RFC 2920 §3.2 asks
   * servers not to give it) must not be followed by an empty message: the link is dropped,
   * so the local side never sees the end of data.
   */
  #dataAnswered(r: Reply): void {
    this.#pendingData = undefined;
    if (this.#accepted.length === 0) {
      if (r.code === 354) this.#link.breakLink("local server accepted DATA without recipients");
      this.#state = { kind: "refused", reply: reply(554, "5.5.1", "No valid recipients") };
      return;
    }
    this.#state = r.code === 354 ? { kind: "data", stuffer: new DotStuffer() } : {
      kind: "refused",
      reply: isTransient(r) || isPermanent(r) ? r : LOCAL_REPLIES.unavailable,
    };
  }

  /** Sends DATA on the first body bytes (the receiver only calls write after RCPTs). */
  async #startData(): Promise<void> {
    if (this.#state.kind !== "envelope") return;
    if (this.#accepted.length === 0) {
      this.#state = { kind: "refused", reply: reply(554, "5.5.1", "No valid recipients") };
      return;
    }
    this.#dataAnswered(await this.#link.command("DATA", this.#sink.timeouts.commandMs));
  }

  async write(chunk: Uint8Array): Promise<void> {
    await this.#startData();
    const state = this.#state;
    if (state.kind !== "data") return;
    if (this.#link.caps?.eightBitMime !== true && hasEightBit(chunk)) {
      // Undeclared 8-bit content (declared is refused at MAIL): part of the body may be out
      // already, so the link is dropped and the local side never sees the end of data.
      this.#link.breakLink("8-bit body for a local server without 8BITMIME");
      this.#state = { kind: "refused", reply: LOCAL_REPLIES.needs8BitMime };
      return;
    }
    const pieces = state.stuffer.push(chunk);
    if (state.stuffer.fault !== undefined) {
      // The receiver refuses bare CR/LF itself; this is only a second line of defence.
      this.#link.breakLink("bare CR or LF in the body");
      this.#state = { kind: "refused", reply: reply(550, "5.5.2", "Bare CR or LF not allowed") };
      return;
    }
    // Copied: the chunk is only valid during this call (the reader may free it right after).
    // Held back until the buffer is full, so a small body goes out in one write with its end.
    if (!(await this.#put(pieces))) {
      this.#state = { kind: "refused", reply: LOCAL_REPLIES.unavailable };
    }
  }

  /**
   * Copies `pieces` into the write buffer and writes it each time it fills. The write is
   * flushed (the socket is done with the bytes when it resolves), so the same buffer is filled
   * again: one buffer per transaction, whatever the size of the body. False once the link is
   * lost.
   */
  async #put(pieces: readonly Uint8Array[]): Promise<boolean> {
    for (const p of pieces) {
      for (let at = 0; at < p.length;) {
        const out = this.#out ??= this.#link.buffer(this.#bufferSize());
        const n = Math.min(p.length - at, out.length - this.#outBytes);
        out.set(p.subarray(at, at + n), this.#outBytes);
        this.#outBytes += n;
        at += n;
        if (this.#outBytes < out.length) continue;
        if (!(await this.#writeOut())) return false;
        // A first buffer sized by SIZE= that filled up: the body is bigger, take a full one.
        if (out.length < LOCAL_WRITE_BYTES) this.#out = undefined;
      }
    }
    return true;
  }

  /** Writes what the buffer holds (flushed, see #put); the buffer is empty after it. */
  async #writeOut(): Promise<boolean> {
    const out = this.#out?.subarray(0, this.#outBytes);
    this.#outBytes = 0;
    if (out === undefined || out.length === 0) return true;
    return await this.#link.writeAll([out], this.#sink.timeouts.dataBlockMs);
  }

  /**
   * LOCAL_WRITE_BYTES, or less for a body announced smaller (SIZE=): a 4 KB message does not
   * need a 64 KiB buffer. Room for its dots and end marker (more than that only costs a write)
   * and for the next commands.
   */
  #bufferSize(): number {
    const size = this.#mail.declaredSize;
    const isFirst = this.#isFirstBuffer;
    this.#isFirstBuffer = false;
    if (size === undefined || !isFirst) return LOCAL_WRITE_BYTES;
    return Math.min(LOCAL_WRITE_BYTES, size + Math.ceil(size / 64) + 64 + NEXT_COMMANDS_ROOM);
  }

  finish(): Promise<Reply> {
    // LMTP without PRDR has one accepted recipient here; SMTP gives one reply anyway.
    return this.#end().then(oneReply);
  }

  /**
   * Under local PIPELINING: the end of the body is kept to go out with the next pipelined
   * MAIL/RCPT/DATA the receiver relays meanwhile (`LocalConnection.hold`), and the local reply
   * is read later, in order (`LocalConnection.read`): "." and the next envelope cost one local
   * round trip.
   */
  async #finishLater(): Promise<{ readonly reply: Promise<Reply> }> {
    const ended = await this.#endData(true);
    const replies = "replies" in ended ? Promise.resolve(ended.replies) : ended.read();
    return { reply: replies.then(oneReply) };
  }

  /**
   * The body's end marker, then the local replies: one per accepted recipient under LMTP
   * (RFC 2033 §4.2), one under SMTP; a refusal before the body stands for every recipient.
   */
  async #end(): Promise<Reply[]> {
    const ended = await this.#endData();
    if ("replies" in ended) return ended.replies;
    const replies = await ended.read();
    // Nothing follows the "." here (unlike #finishLater), so a RSET can: Postfix's smtpd keeps
    // the envelope of a message its end-of-data restrictions refused, and would answer the next
    // MAIL "503 nested MAIL command" (RFC 5321 §4.1.1.4 says the transaction ends there).
    const isRefused = !this.#sink.isLmtp && !replies.every(isPositive);
    if (isRefused && !this.#link.isBroken) await this.#reset();
    return replies;
  }

  /**
   * The end marker is written (`hold`: kept for the next command, see `#finishLater`): the
   * replies as known already, or how to read them.
   */
  async #endData(hold = false): Promise<
    { readonly replies: Reply[] } | { readonly read: () => Promise<Reply[]> }
  > {
    const count = this.#sink.isLmtp ? Math.max(1, this.#accepted.length) : 1;
    const forAll = (r: Reply) => Array.from({ length: count }, () => r);
    await this.#startData();
    const state = this.#state;
    if (state.kind === "refused") {
      this.#state = { kind: "done" };
      if (!this.#link.isBroken && state.reply.code !== 354) await this.#reset();
      return { replies: forAll(state.reply) };
    }
    if (state.kind !== "data") {
      return { replies: forAll(reply(503, "5.5.1", "Bad sequence of commands")) };
    }
    this.#state = { kind: "done" };
    const end = state.stuffer.finish();
    if (state.stuffer.fault !== undefined) {
      // A held-back bare CR at the very end: never send it, and drop the local transaction.
      this.#link.breakLink("bare CR at the end of the body");
      return { replies: forAll(reply(554, "5.6.0", "Message contains a bare CR or LF")) };
    }
    let written = await this.#put(end);
    if (written && hold) {
      // The link takes the buffer, and fills the room after the body with the next commands.
      if (this.#out !== undefined && this.#outBytes > 0) this.#link.hold(this.#out, this.#outBytes);
      this.#outBytes = 0;
    } else if (written) written = await this.#writeOut();
    this.#out = undefined;
    if (!written) return { replies: forAll(LOCAL_REPLIES.unavailable) };
    return { read: () => this.#readFinals(count) };
  }

  /**
   * The local replies after the end marker (one per accepted recipient under LMTP), all asked
   * for at once so that no read of the next transaction comes between them.
   */
  async #readFinals(count: number): Promise<Reply[]> {
    const timeoutMs = this.#sink.timeouts.dataFinalMs;
    // After a lost link the rest are LOCAL_REPLIES.unavailable without I/O.
    const replies =
      (count === 1
        ? [await this.#link.read(timeoutMs)]
        : await Promise.all(Array.from({ length: count }, () => this.#link.read(timeoutMs))))
        .map((r) => isOutOfPlace(r) ? this.#outOfStep(`end of data answered ${r.code}`) : r);
    const isDebug = this.#sinkLog.isEnabled?.("debug") ?? true;
    for (const [i, final] of replies.entries()) {
      // Delivered is a debug line, only built when written.
      if (isPositive(final) && !isDebug) continue;
      const fields = {
        to: this.#sink.where,
        from: this.#mail.address,
        recipients: this.#sink.isLmtp ? this.#accepted[i] : this.#accepted.join(","),
        code: final.code,
        reply: final.lines.join(" "),
      };
      // Delivered: debug, since the customer's ledger logs each message's outcome at info.
      if (isPositive(final)) this.#log.debug("local_delivered", fields);
      else this.#log.info("local_refused", fields);
    }
    return replies;
  }

  async #reset(): Promise<void> {
    // Nothing to reset when MAIL never went out (no recipient reached the local side).
    if (this.#mailState.kind === "pending") return;
    const r = await this.#link.command("RSET", this.#sink.timeouts.commandMs);
    if (!isPositive(r)) this.#link.breakLink(`RSET refused with ${r.code}`);
  }

  /** A local reply out of place: the local server is out of step, the link is dropped. */
  #outOfStep(reason: string): Reply {
    this.#log.warn("local_reply_out_of_place", { to: this.#sink.where, reason });
    this.#link.breakLink(reason);
    return LOCAL_REPLIES.unavailable;
  }

  async abort(): Promise<void> {
    const state = this.#state;
    this.#state = { kind: "done" };
    if (state.kind === "done") return;
    // Mid-DATA there is no way to take the body back except dropping the link: the local
    // side then discards the partial message (RFC 5321 §4.1.1.4: no "." seen, no delivery).
    if (state.kind === "data") {
      this.#link.breakLink("transaction aborted mid-DATA");
      this.#log.warn("local_aborted_mid_data", { to: this.#sink.where });
      return;
    }
    if (!this.#link.isBroken) await this.#reset();
  }
}

/**
 * A local refusal of a pipelined MAIL, as the reply to each RCPT upstream: the same code,
 * enhanced code and text, so the provider settles each recipient as it would have for a
 * refused MAIL (4xx deferred, 5xx failed). 552 is the one code the provider reads
 * differently at RCPT (RFC 821's "too many recipients": deferred), so a permanent 552 from
 * MAIL (size) goes up as 554. Anything outside 4xx/5xx is out of place: temporary.
 */
function mailRefusalForRecipients(r: Reply): Reply {
  if (r.code === 552) return { ...r, code: 554 };
  if (isTransient(r) || isPermanent(r)) return r;
  return LOCAL_REPLIES.unavailable;
}

/**
 * Several LMTP replies as one (a PRDR transaction ended with `finish` after all): positive
 * only when every recipient took it; else a temporary refusal first, so nothing is lost.
 */
function oneReply(replies: readonly Reply[]): Reply {
  if (replies.every(isPositive)) return replies[0] ?? LOCAL_REPLIES.unavailable;
  return replies.find(isTransient) ?? replies.find((r) => !isPositive(r)) ??
    LOCAL_REPLIES.unavailable;
}

function hasEightBit(chunk: Uint8Array): boolean {
  for (let i = 0; i < chunk.length; i++) if ((chunk[i] ?? 0) >= 0x80) return true;
  return false;
}
