/**
 * One transaction relayed to the local SMTP/LMTP server, cut-through: MAIL (with the first
 * RCPT under PIPELINING) and each RCPT as they arrive, the body dot-stuffed in writes of up to
 * LOCAL_WRITE_BYTES, then the local reply or, under LMTP, one reply per recipient (RFC 2033
 * §4.2). Without PRDR upstream an LMTP transaction takes one recipient (`452 4.5.3` for the
 * others, `splitRecipients` counts them) so that the single upstream reply always matches.
 *
 * Sent ahead (SMTP under PIPELINING, the one recipient of its transaction, DATA next): MAIL,
 * RCPT and DATA go out and the RCPT is answered `250` upstream at once; the body is gathered
 * and goes out only after the local `354`, and the receiver meanwhile takes the next messages
 * (`MAX_AHEAD` envelopes at most wait for their replies). The reply at the end of data then
 * carries what the local server said, for that one recipient: its refusal of MAIL or RCPT
 * (`refusalAsFinal`: settled upstream the same way as at RCPT), of DATA, or its reply to ".".
 * No recipient the local server refused is ever answered `250` at the end of data.
 */
import { isPermanent, isPositive, isTransient, reply } from "../../wire/reply.ts";
import type { Reply } from "../../wire/reply.ts";
import { DotStuffer } from "../../wire/dot_stuffer.ts";
import type { MailFrom, RcptAhead, RcptTo, SinkTransaction } from "../sink.ts";
import type { Logger } from "../../observe/log.ts";
import { LOCAL_REPLIES, type LocalConnection, type LocalSinkView } from "./_local_link.ts";
import { aheadOutcome, mailRefusalForRecipients, oneReply } from "./_local_replies.ts";
import { LocalBody } from "./_local_body.ts";

let txSequence = 0;

/** Upstream answer to a RCPT sent ahead: the local reply comes at the end of data. */
const AHEAD_ACCEPTED = reply(250, "2.1.5", "Recipient OK");

type TxState =
  | { readonly kind: "envelope" }
  /** MAIL/RCPT/DATA sent ahead, replies not read yet: body bytes gather in the buffer. */
  | { readonly kind: "ahead"; readonly stuffer: DotStuffer }
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
  readonly #link: LocalConnection;
  readonly #mail: MailFrom;
  /** The sink's logger; this transaction's (with its id) is made when a line is written. */
  readonly #sinkLog: Logger;
  #txLog: Logger | undefined;
  readonly #sequence = ++txSequence;
  #id: string | undefined;
  readonly #accepted: string[] = [];
  #state: TxState = { kind: "envelope" };
  #mailState: MailState;
  /** Stuffed body bytes not written yet (the only copy of the body). */
  readonly #body: LocalBody;
  /** The local reply to a DATA sent with the last RCPT, until that RCPT's reply is settled. */
  #pendingData: Reply | undefined;
  /** Sent ahead: resolves once the local replies to MAIL/RCPT/DATA were read (never rejects). */
  #settled: Promise<void> | undefined;
  /** Sent ahead and settled: "go" after the local 354, else the answer at the end of data. */
  #aheadResult: "go" | Reply | undefined;
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
    this.#body = new LocalBody(mail.declaredSize, (bytes) => this.#writeBody(bytes));
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
    if (this.#goesAhead(ahead)) return await this.#sendAhead(rcpt.address);
    const r = await this.#relayRecipient(
      `RCPT TO:<${rcpt.address}>`,
      ahead?.dataFollows === true && this.#link.caps?.pipelining === true,
    );
    if (isPositive(r)) this.#accepted.push(rcpt.address);
    else this.#log.info("local_rcpt_refused", { rcpt: rcpt.address, code: r.code });
    if (this.#pendingData !== undefined) this.#dataAnswered(this.#pendingData);
    return r;
  }

  /**
   * Whether this RCPT is sent ahead: DATA is next, no recipient was accepted before it (the
   * reply at the end of data then stands for it alone), SMTP (under LMTP each recipient has
   * its own reply after the body) under PIPELINING, MAIL not refused.
   */
  #goesAhead(ahead: RcptAhead | undefined): boolean {
    return ahead?.dataFollows === true && this.#link.caps?.pipelining === true &&
      !this.#sink.isLmtp && this.#accepted.length === 0 && this.#mailState.kind !== "refused";
  }

  /** Sends MAIL (if pending), RCPT and DATA, answers 250 now; see the module comment. */
  async #sendAhead(address: string): Promise<Reply> {
    if (this.#link.isAheadFull) await this.#link.roomAhead();
    const mail = this.#mailState;
    const rcptLine = `RCPT TO:<${address}>`;
    const lines = mail.kind === "pending" ? [mail.line, rcptLine, "DATA"] : [rcptLine, "DATA"];
    const stuffer = new DotStuffer();
    this.#state = { kind: "ahead", stuffer };
    this.#accepted.push(address);
    const settled = this.#settleAhead(lines, mail.kind === "pending", address, stuffer);
    this.#settled = settled;
    this.#link.sendsAhead(settled);
    return AHEAD_ACCEPTED;
  }

  /**
   * Writes the envelope sent ahead (after any body still waiting for its 354), reads its
   * replies in order, and records whether the body may go (`#aheadResult`).
   */
  async #settleAhead(
    lines: readonly string[],
    withMail: boolean,
    address: string,
    stuffer: DotStuffer,
  ): Promise<void> {
    const timeoutMs = this.#sink.timeouts.commandMs;
    let result: "go" | Reply = LOCAL_REPLIES.unavailable;
    try {
      if (!(await this.#link.writeLines(lines, timeoutMs))) {
        this.#mailState = { kind: "refused", reply: LOCAL_REPLIES.unavailable };
      } else {
        // Asked for at once, in the order the commands went out.
        const mailReply = withMail ? this.#link.read(timeoutMs) : undefined;
        const rcptReply = this.#link.read(timeoutMs);
        const dataReply = this.#link.read(timeoutMs);
        result = this.#aheadOutcome(await mailReply, await rcptReply, await dataReply, address);
      }
    } catch (err) {
      // Reads answer a lost link without throwing; anything else is a bug, kept temporary.
      this.#log.error("local_ahead_failed", { error: String(err) });
    }
    this.#aheadResult = result;
    if (this.#state.kind === "ahead") {
      this.#state = result === "go"
        ? { kind: "data", stuffer }
        : { kind: "refused", reply: result };
    }
  }

  /** Applies the local replies to an envelope sent ahead: "go" (354) or the answer at the end. */
  #aheadOutcome(
    mailReply: Reply | undefined,
    rcptReply: Reply,
    dataReply: Reply,
    address: string,
  ): "go" | Reply {
    const o = aheadOutcome(mailReply, rcptReply, dataReply);
    if (o.mailRefusal !== undefined) {
      this.#log.warn("local_mail_refused", { to: this.#sink.where, code: mailReply?.code });
      this.#mailState = { kind: "refused", reply: o.mailRefusal };
    } else if (mailReply !== undefined) this.#mailState = { kind: "accepted" };
    if (o.isRcptRefused) {
      this.#log.info("local_rcpt_refused", { rcpt: address, code: rcptReply.code });
    }
    // RFC 2920 §3.2 asks for no 354 without a recipient: the local side must never see an end.
    if (o.mustBreak) this.#link.breakLink("local server accepted DATA without recipients");
    return o.result;
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
    if (mailReply.code === 250) {
      this.#mailState = { kind: "accepted" };
      return rcptReply;
    }
    this.#log.warn("local_mail_refused", { to: this.#sink.where, code: mailReply.code });
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
    if (state.kind !== "data" && state.kind !== "ahead") return;
    const pieces = state.stuffer.push(chunk);
    if (state.stuffer.fault !== undefined) {
      // The receiver refuses bare CR/LF itself; this is only a second line of defence. The
      // replies to an envelope sent ahead are read first (those before it are not lost).
      await this.#settled;
      this.#link.breakLink("bare CR or LF in the body");
      this.#state = { kind: "refused", reply: reply(550, "5.5.2", "Bare CR or LF not allowed") };
      return;
    }
    // Copied: the chunk is only valid during this call (the reader may free it right after).
    // Held back until the buffer is full, so a small body goes out in one write with its end.
    if (!(await this.#body.put(pieces))) {
      this.#state = { kind: "refused", reply: LOCAL_REPLIES.unavailable };
    }
  }

  /**
   * Writes a full body buffer (flushed: it is filled again after). Sent ahead, only after the
   * local 354: a refused body is dropped here.
   */
  async #writeBody(bytes: Uint8Array): Promise<boolean> {
    if (this.#settled !== undefined) {
      await this.#settled;
      if (this.#aheadResult !== "go") return true;
    }
    return await this.#link.writeAll([bytes], this.#sink.timeouts.dataBlockMs);
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
    return "replies" in ended ? ended.replies : await ended.read();
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
    if (this.#state.kind === "ahead") {
      if (hold) return await this.#endAhead();
      await this.#settled;
    }
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
    let written = await this.#body.put(end);
    if (written && hold) {
      // The link takes the buffer, and fills the room after the body with the next commands.
      const last = this.#body.take();
      if (last !== undefined) this.#link.hold(last.buffer, last.length);
    } else if (written) written = await this.#body.writeOut();
    this.#body.drop();
    if (!written) return { replies: forAll(LOCAL_REPLIES.unavailable) };
    return { read: () => this.#readFinals(count) };
  }

  /**
   * The end of a body sent ahead whose 354 has not come (`finishLater`): the body waits in its
   * buffer and goes out once the 354 came, kept for the next command (`hold`), with the reply
   * to "." asked for at that moment; every later command waits for it (`bodyFirst`). Refused,
   * the body is dropped and RSET ends the local transaction before the next command.
   */
  async #endAhead(): Promise<
    { readonly replies: Reply[] } | { readonly read: () => Promise<Reply[]> }
  > {
    const state = this.#state;
    if (state.kind !== "ahead") return { replies: [LOCAL_REPLIES.unavailable] };
    this.#state = { kind: "done" };
    const end = state.stuffer.finish();
    if (state.stuffer.fault !== undefined) {
      await this.#settled;
      this.#link.breakLink("bare CR at the end of the body");
      return { replies: [reply(554, "5.6.0", "Message contains a bare CR or LF")] };
    }
    // A buffer that fills writes (after the 354, see #writeBody); the rest waits here.
    if (!(await this.#body.put(end))) return { replies: [LOCAL_REPLIES.unavailable] };
    const last = this.#body.take();
    let finals: Promise<Reply[]> = Promise.resolve([LOCAL_REPLIES.unavailable]);
    const sent = (async () => {
      await this.#settled;
      const result = this.#aheadResult;
      if (result !== "go") {
        finals = Promise.resolve([result ?? LOCAL_REPLIES.unavailable]);
        if (!this.#link.isBroken) await this.#reset(true);
        return;
      }
      if (last !== undefined) this.#link.hold(last.buffer, last.length);
      finals = this.#readFinals(1);
    })();
    this.#link.bodyFirst(sent);
    return { read: () => sent.then(() => finals) };
  }

  /**
   * The local replies after the end marker (one per accepted recipient under LMTP), all asked
   * for at once so that no read of the next transaction comes between them.
   */
  async #readFinals(count: number): Promise<Reply[]> {
    const timeoutMs = this.#sink.timeouts.dataFinalMs;
    // After a lost link the rest are LOCAL_REPLIES.unavailable without I/O.
    const replies = count === 1
      ? [await this.#link.read(timeoutMs)]
      : await Promise.all(Array.from({ length: count }, () => this.#link.read(timeoutMs)));
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

  /** RSET after a refusal; `now`: ahead of a body waiting in `bodyFirst` (it is this one's). */
  async #reset(now = false): Promise<void> {
    // Nothing to reset when MAIL never went out (no recipient reached the local side).
    if (this.#mailState.kind === "pending") return;
    const timeoutMs = this.#sink.timeouts.commandMs;
    const r = now
      ? await this.#link.commandNow("RSET", timeoutMs)
      : await this.#link.command("RSET", timeoutMs);
    if (r.code !== 250) this.#link.breakLink(`RSET refused with ${r.code}`);
  }

  async abort(): Promise<void> {
    const state = this.#state;
    this.#state = { kind: "done" };
    if (state.kind === "done") return;
    if (state.kind === "ahead") {
      // The replies to the envelope sent ahead are read first; after a 354 the local side
      // waits for a body that will not come: only dropping the link takes it back.
      await this.#settled;
      if (this.#aheadResult === "go") {
        this.#link.breakLink("transaction aborted after the local 354");
        this.#log.warn("local_aborted_mid_data", { to: this.#sink.where });
      } else if (!this.#link.isBroken) await this.#reset();
      return;
    }
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
