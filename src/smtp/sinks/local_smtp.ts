/**
 * Cut-through hand-off to the local mail system over SMTP (`smtp://H:P`) or LMTP
 * (`lmtp://H:P`, `lmtp+unix:/path`, RFC 2033) as a MessageSink: MAIL and each RCPT are relayed
 * as they arrive (MAIL together with the first RCPT when the local side offers PIPELINING), so
 * a local refusal becomes that recipient's refusal upstream; the body is
 * streamed dot-stuffed; the upstream end-of-DATA reply is the local final reply. One local
 * connection per sink (one per ATRN session), reused across transactions.
 *
 * LMTP answers once per recipient after DATA, SMTP upstream only once per message. So that
 * the two can never disagree, an LMTP transaction takes one recipient; further RCPTs get
 * `452 4.5.3` and the provider keeps them queued for the next transaction (`splitRecipients`
 * counts them so the customer can poll again at once).
 */
import { concatBytes } from "../../wire/bytes.ts";
import type { Conn } from "../../net/conn.ts";
import { connect } from "../../net/conn.ts";
import { LineReader } from "../../wire/line_reader.ts";
import { isPermanent, isPositive, isTransient, reply } from "../../wire/reply.ts";
import type { Reply } from "../../wire/reply.ts";
import type { Capabilities } from "../../wire/ehlo.ts";
import { DotStuffer } from "../../wire/dot_stuffer.ts";
import type { DeliverTo } from "../../config/types.ts";
import type { MailFrom, MessageSink, RcptTo, SessionInfo, SinkTransaction } from "../sink.ts";
import { type Answer, ClientLink } from "../client/link.ts";
import type { Logger } from "../../observe/log.ts";
import { NULL_LOGGER } from "../../observe/log.ts";

/** Where the local mail system listens. */
export type LocalTarget = Extract<DeliverTo, { kind: "smtp" | "lmtp" | "lmtpUnix" }>;

/** Deadlines of the local client role (RFC 5321 §4.5.3.2 minimums by default). */
export interface LocalTimeouts {
  readonly connectMs: number;
  readonly commandMs: number;
  /** Per body write. */
  readonly dataBlockMs: number;
  readonly dataFinalMs: number;
}

export const DEFAULT_LOCAL_TIMEOUTS: LocalTimeouts = {
  connectMs: 30_000,
  commandMs: 5 * 60_000,
  dataBlockMs: 3 * 60_000,
  dataFinalMs: 10 * 60_000,
};

/** Options of a local SMTP/LMTP sink. */
export interface LocalSmtpSinkOptions {
  readonly target: LocalTarget;
  /** Our name in EHLO/LHLO. */
  readonly hostname: string;
  readonly log?: Logger;
  readonly timeouts?: Partial<LocalTimeouts>;
}

/** The local side could not be reached or broke: temporary, the provider keeps the mail. */
export const LOCAL_UNAVAILABLE: Reply = reply(
  451,
  "4.3.0",
  "Local delivery unavailable, try again later",
);
/** LMTP: one recipient per transaction (RFC 5321 §4.5.3.1.10: the client retries the rest). */
export const ONE_RECIPIENT_PER_TRANSACTION: Reply = reply(
  452,
  "4.5.3",
  "One recipient per transaction, send the others again",
);

/** Human form of a target, for logs. */
export function describeTarget(t: LocalTarget): string {
  switch (t.kind) {
    case "smtp":
      return `smtp://${t.host}:${t.port}`;
    case "lmtp":
      return `lmtp://${t.host}:${t.port}`;
    case "lmtpUnix":
      return `lmtp+unix:${t.path}`;
    default: {
      const never: never = t;
      throw new Error(`unreachable target ${JSON.stringify(never)}`);
    }
  }
}

/** Body bytes gathered into one write to the local server. */
const LOCAL_WRITE_BYTES = 64 * 1024;

/**
 * One open connection to the local MTA after a successful EHLO/LHLO, on the client link.
 * Whatever ends the link (the local side's 421 included) is LOCAL_UNAVAILABLE upstream: the
 * provider must not read a local 421 as the customer closing its own connection.
 */
class LocalConnection {
  readonly link: ClientLink;
  caps: Capabilities | undefined;

  constructor(conn: Conn, log: Logger) {
    this.link = new ClientLink({ conn, reader: new LineReader(conn), log });
  }

  get isBroken(): boolean {
    return this.link.isLost;
  }

  /** Writes one command line and reads its reply. */
  async command(line: string, timeoutMs: number): Promise<Reply> {
    return upstreamReply(await this.link.command(line, timeoutMs));
  }

  write(bytes: Uint8Array, timeoutMs: number): Promise<boolean> {
    return this.link.writeEach([bytes], timeoutMs);
  }

  async read(timeoutMs: number): Promise<Reply> {
    return upstreamReply(await this.link.read(timeoutMs));
  }

  breakLink(reason: string): void {
    this.link.lose(LOCAL_UNAVAILABLE, reason);
  }
}

/** A local reply as it goes upstream: a lost link is an ordinary temporary refusal. */
function upstreamReply(answer: Answer): Reply {
  return answer.kind === "reply" ? answer.reply : LOCAL_UNAVAILABLE;
}

/** Relays each transaction to a local SMTP or LMTP server. */
export class LocalSmtpSink implements MessageSink {
  readonly #opts: LocalSmtpSinkOptions;
  readonly #log: Logger;
  readonly timeouts: LocalTimeouts;
  readonly isLmtp: boolean;
  readonly where: string;
  #link: LocalConnection | undefined;
  /** RCPTs answered 452 because of the one-recipient LMTP rule. */
  splitRecipients = 0;

  constructor(opts: LocalSmtpSinkOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? NULL_LOGGER;
    this.timeouts = { ...DEFAULT_LOCAL_TIMEOUTS, ...opts.timeouts };
    this.isLmtp = opts.target.kind !== "smtp";
    this.where = describeTarget(opts.target);
  }

  /** The open connection, or a new one (greeting + EHLO/LHLO), or why there is none. */
  async #connection(): Promise<LocalConnection | Reply> {
    if (this.#link !== undefined && !this.#link.isBroken) return this.#link;
    this.#link = undefined;
    let conn: Conn;
    try {
      conn = await openSocket(this.#opts.target, this.timeouts.connectMs);
    } catch (err) {
      this.#log.error("local_connect_failed", { to: this.where, error: errorText(err) });
      return LOCAL_UNAVAILABLE;
    }
    const link = new LocalConnection(conn, this.#log);
    const greeting = await link.link.greet(this.timeouts.commandMs);
    if (greeting.kind === "lost" || greeting.reply.code !== 220) {
      const code = greeting.kind === "lost" ? greeting.loss.reply.code : greeting.reply.code;
      this.#log.error("local_greeting_refused", { to: this.where, code });
      link.breakLink("no greeting");
      return LOCAL_UNAVAILABLE;
    }
    const hello = await link.link.hello(this.#opts.hostname, {
      timeoutMs: this.timeouts.commandMs,
      lmtp: this.isLmtp,
    });
    if (hello.kind !== "ready") {
      const code = hello.kind === "lost" ? hello.loss.reply.code : hello.reply.code;
      this.#log.error("local_hello_refused", { to: this.where, code });
      link.breakLink("hello refused");
      return LOCAL_UNAVAILABLE;
    }
    link.caps = hello.caps;
    this.#link = link;
    return link;
  }

  async begin(mail: MailFrom, _session: SessionInfo): Promise<SinkTransaction | Reply> {
    const link = await this.#connection();
    if ("code" in link) return link;
    let line = `MAIL FROM:<${mail.address}>`;
    if (link.caps?.eightBitMime && mail.params.body === "8BITMIME") line += " BODY=8BITMIME";
    if (link.caps?.smtpUtf8 && mail.params.smtputf8 === true) line += " SMTPUTF8";
    if (link.caps?.pipelining === true) {
      // RFC 2920: MAIL goes out with the first RCPT (one local round trip less per message);
      // a local refusal of MAIL then becomes the refusal of every recipient (see #mailRefusal).
      return new LocalTransaction(this, link, mail, this.#log, { kind: "pending", line });
    }
    const r = await link.command(line, this.timeouts.commandMs);
    if (r.code !== 250) {
      this.#log.warn("local_mail_refused", { to: this.where, code: r.code });
      return r;
    }
    return new LocalTransaction(this, link, mail, this.#log, { kind: "accepted" });
  }

  /** QUIT and close the local connection (end of the ATRN session). Never throws. */
  async close(): Promise<void> {
    const link = this.#link;
    this.#link = undefined;
    if (link === undefined || link.isBroken) return;
    await link.link.quit(10_000);
    await link.link.conn.close().catch(() => {});
  }
}

let txSequence = 0;

type TxState =
  | { readonly kind: "envelope" }
  | { readonly kind: "data"; readonly stuffer: DotStuffer }
  /** DATA was refused (or the link broke): body bytes are dropped, `reply` is the answer. */
  | { readonly kind: "refused"; readonly reply: Reply }
  | { readonly kind: "done" };

/** Where the local MAIL stands (PIPELINING: it is sent with the first RCPT). */
type MailState =
  | { readonly kind: "pending"; readonly line: string }
  | { readonly kind: "accepted" }
  /** Refused locally: every recipient of this transaction gets `reply`. */
  | { readonly kind: "refused"; readonly reply: Reply };

class LocalTransaction implements SinkTransaction {
  readonly id: string;
  readonly #sink: LocalSmtpSink;
  readonly #link: LocalConnection;
  readonly #mail: MailFrom;
  readonly #log: Logger;
  readonly #accepted: string[] = [];
  #state: TxState = { kind: "envelope" };
  #mailState: MailState;
  /** Stuffed body bytes not written yet (fewer than LOCAL_WRITE_BYTES). */
  #held: Uint8Array[] = [];
  #heldBytes = 0;

  constructor(
    sink: LocalSmtpSink,
    link: LocalConnection,
    mail: MailFrom,
    log: Logger,
    mailState: MailState,
  ) {
    this.#sink = sink;
    this.#link = link;
    this.#mail = mail;
    this.#mailState = mailState;
    this.id = `L${Date.now().toString(36)}${(++txSequence).toString(36)}`;
    this.#log = log.with({ tx: this.id });
  }

  async addRecipient(rcpt: RcptTo): Promise<Reply> {
    if (this.#state.kind !== "envelope") return reply(503, "5.5.1", "Bad sequence of commands");
    if (this.#sink.isLmtp && this.#accepted.length >= 1) {
      this.#sink.splitRecipients++;
      return ONE_RECIPIENT_PER_TRANSACTION;
    }
    const r = await this.#relayRecipient(`RCPT TO:<${rcpt.address}>`);
    if (isPositive(r)) this.#accepted.push(rcpt.address);
    else this.#log.info("local_rcpt_refused", { rcpt: rcpt.address, code: r.code });
    return r;
  }

  /** The local reply to one RCPT; the first one carries the pending MAIL in the same write. */
  async #relayRecipient(rcptLine: string): Promise<Reply> {
    const timeoutMs = this.#sink.timeouts.commandMs;
    const mail = this.#mailState;
    if (mail.kind === "refused") return mail.reply;
    if (mail.kind === "accepted") return await this.#link.command(rcptLine, timeoutMs);
    if (!(await this.#link.link.writeLines([mail.line, rcptLine], timeoutMs))) {
      this.#mailState = { kind: "refused", reply: LOCAL_UNAVAILABLE };
      return LOCAL_UNAVAILABLE;
    }
    const mailReply = await this.#link.read(timeoutMs);
    // The RCPT reply is read in every case, to stay in step with the local server.
    const rcptReply = await this.#link.read(timeoutMs);
    if (mailReply.code === 250) {
      this.#mailState = { kind: "accepted" };
      return rcptReply;
    }
    this.#log.warn("local_mail_refused", { to: this.#sink.where, code: mailReply.code });
    const refusal = mailRefusalForRecipients(mailReply);
    this.#mailState = { kind: "refused", reply: refusal };
    return refusal;
  }

  /** Sends DATA on the first body bytes (the receiver only calls write after RCPTs). */
  async #startData(): Promise<void> {
    if (this.#state.kind !== "envelope") return;
    if (this.#accepted.length === 0) {
      this.#state = { kind: "refused", reply: reply(554, "5.5.1", "No valid recipients") };
      return;
    }
    const r = await this.#link.command("DATA", this.#sink.timeouts.commandMs);
    this.#state = r.code === 354
      ? { kind: "data", stuffer: new DotStuffer() }
      : { kind: "refused", reply: isTransient(r) || isPermanent(r) ? r : LOCAL_UNAVAILABLE };
  }

  async write(chunk: Uint8Array): Promise<void> {
    await this.#startData();
    const state = this.#state;
    if (state.kind !== "data") return;
    const pieces = state.stuffer.push(chunk);
    if (state.stuffer.fault !== undefined) {
      // The receiver refuses bare CR/LF itself; this is only a second line of defence.
      this.#link.breakLink("bare CR or LF in the body");
      this.#state = { kind: "refused", reply: reply(550, "5.5.2", "Bare CR or LF not allowed") };
      return;
    }
    // Copied: the chunk is only valid during this call. Held back until a full write's worth,
    // so a small body goes out in one write together with its end marker.
    for (const p of pieces) {
      this.#held.push(p.slice());
      this.#heldBytes += p.length;
    }
    if (this.#heldBytes < LOCAL_WRITE_BYTES) return;
    if (!(await this.#link.write(this.#takeHeld([]), this.#sink.timeouts.dataBlockMs))) {
      this.#state = { kind: "refused", reply: LOCAL_UNAVAILABLE };
    }
  }

  /** The held-back body bytes followed by `more`, as one array; empties the hold. */
  #takeHeld(more: readonly Uint8Array[]): Uint8Array {
    const parts = [...this.#held, ...more];
    this.#held = [];
    this.#heldBytes = 0;
    return concatBytes(parts);
  }

  async finish(): Promise<Reply> {
    await this.#startData();
    const state = this.#state;
    if (state.kind === "refused") {
      this.#state = { kind: "done" };
      if (!this.#link.isBroken && state.reply.code !== 354) await this.#reset();
      return state.reply;
    }
    if (state.kind !== "data") return reply(503, "5.5.1", "Bad sequence of commands");
    this.#state = { kind: "done" };
    const end = state.stuffer.finish();
    if (state.stuffer.fault !== undefined) {
      // A held-back bare CR at the very end: never send it, and drop the local transaction.
      this.#link.breakLink("bare CR at the end of the body");
      return reply(554, "5.6.0", "Message contains a bare CR or LF");
    }
    if (!(await this.#link.write(this.#takeHeld(end), this.#sink.timeouts.dataBlockMs))) {
      return LOCAL_UNAVAILABLE;
    }
    // LMTP has exactly one accepted recipient here, so one reply; SMTP gives one anyway.
    const final = await this.#link.read(this.#sink.timeouts.dataFinalMs);
    const fields = {
      to: this.#sink.where,
      from: this.#mail.address,
      recipients: this.#accepted.join(","),
      code: final.code,
      reply: final.lines.join(" "),
    };
    // Delivered: debug, since the customer's ledger logs each message's outcome at info.
    if (final.code === 250) this.#log.debug("local_delivered", fields);
    else this.#log.info("local_refused", fields);
    return final;
  }

  async #reset(): Promise<void> {
    // Nothing to reset when MAIL never went out (no recipient reached the local side).
    if (this.#mailState.kind === "pending") return;
    const r = await this.#link.command("RSET", this.#sink.timeouts.commandMs);
    if (r.code !== 250) this.#link.breakLink(`RSET refused with ${r.code}`);
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
  return LOCAL_UNAVAILABLE;
}

/** Opens a TCP or unix-socket connection to the local server. */
async function openSocket(target: LocalTarget, timeoutMs: number): Promise<Conn> {
  const where = target.kind === "lmtpUnix"
    ? { path: target.path }
    : { host: target.host, port: target.port };
  return (await connect({ ...where, timeoutMs })).conn;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
