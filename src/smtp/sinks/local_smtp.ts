/**
 * Cut-through hand-off to the local mail system over SMTP (`smtp://H:P`) or LMTP
 * (`lmtp://H:P`, `lmtp+unix:/path`, RFC 2033) as a MessageSink: MAIL and each RCPT are relayed
 * as they arrive (MAIL together with the first RCPT when the local side offers PIPELINING), so
 * a local refusal becomes that recipient's refusal upstream; the body is
 * streamed dot-stuffed; the upstream end-of-DATA reply is the local final reply. One local
 * connection per sink (one per ATRN session), reused across transactions.
 *
 * LMTP answers once per recipient after DATA, SMTP upstream once per message unless the
 * provider asked for PRDR. Under PRDR an LMTP transaction takes every recipient and each LMTP
 * reply goes up as that recipient's own; without it one recipient per transaction, further
 * RCPTs get `452 4.5.3` and stay queued on the provider (`splitRecipients` counts them so the
 * customer can poll again at once). Transactions: `_local_transaction.ts`.
 */
import type { Conn } from "../../net/conn.ts";
import { connect } from "../../net/connect.ts";
import type { Reply } from "../../wire/reply.ts";
import { isPositive } from "../../wire/reply.ts";
import type { DeliverTo } from "../../config/types.ts";
import type { MailFrom, MessageSink, SessionInfo, SinkTransaction } from "../sink.ts";
import type { Logger } from "../../observe/log.ts";
import { NULL_LOGGER } from "../../observe/log.ts";
import {
  DEFAULT_LOCAL_TIMEOUTS,
  isMailOutOfStep,
  LOCAL_REPLIES,
  LocalConnection,
  type LocalSinkView,
  type LocalTimeouts,
} from "./_local_link.ts";
import { LocalTransaction } from "./_local_transaction.ts";
import { errorText } from "../../errors.ts";

export { DEFAULT_LOCAL_TIMEOUTS, LOCAL_REPLIES, type LocalTimeouts } from "./_local_link.ts";

/** Where the local mail system listens. */
export type LocalTarget = Extract<DeliverTo, { kind: "smtp" | "lmtp" | "lmtpUnix" }>;

/** Options of a local SMTP/LMTP sink. */
export interface LocalSmtpSinkOptions {
  readonly target: LocalTarget;
  /** Our name in EHLO/LHLO. */
  readonly hostname: string;
  readonly log?: Logger;
  readonly timeouts?: Partial<LocalTimeouts>;
}

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

/** Relays each transaction to a local SMTP or LMTP server. */
export class LocalSmtpSink implements MessageSink, LocalSinkView {
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
  async connection(): Promise<LocalConnection | Reply> {
    if (this.#link !== undefined && !this.#link.isBroken) return this.#link;
    this.#link = undefined;
    let conn: Conn;
    try {
      conn = await openSocket(this.#opts.target, this.timeouts.connectMs);
    } catch (err) {
      this.#log.error("local_connect_failed", { to: this.where, error: errorText(err) });
      return LOCAL_REPLIES.unavailable;
    }
    const link = new LocalConnection(conn, this.#log);
    const greeting = await link.link.greet(this.timeouts.commandMs);
    if (greeting.kind === "lost" || greeting.reply.code !== 220) {
      const code = greeting.kind === "lost" ? greeting.loss.reply.code : greeting.reply.code;
      this.#log.error("local_greeting_refused", { to: this.where, code });
      link.breakLink("no greeting");
      return LOCAL_REPLIES.unavailable;
    }
    const hello = await link.link.hello(this.#opts.hostname, {
      timeoutMs: this.timeouts.commandMs,
      lmtp: this.isLmtp,
    });
    if (hello.kind !== "ready") {
      const code = hello.kind === "lost" ? hello.loss.reply.code : hello.reply.code;
      this.#log.error("local_hello_refused", { to: this.where, code });
      link.breakLink("hello refused");
      return LOCAL_REPLIES.unavailable;
    }
    link.caps = hello.caps;
    this.#link = link;
    return link;
  }

  async begin(mail: MailFrom, _session: SessionInfo): Promise<SinkTransaction | Reply> {
    const link = await this.connection();
    if ("code" in link) return link;
    // Only what the local server offered (docs/protocol.md §4.8, as the drain): no MAIL at all
    // for a message it could not take as it is.
    const unfit = unfitReply(mail, link);
    if (unfit !== undefined) {
      this.#log.warn("local_mail_refused", { to: this.where, code: unfit.code });
      return unfit;
    }
    let line = `MAIL FROM:<${mail.address}>`;
    if (mail.params.body === "8BITMIME") line += " BODY=8BITMIME";
    if (mail.params.smtputf8 === true) line += " SMTPUTF8";
    // RFC 1870 §6: the provider's estimate, so a local MTA with a smaller limit refuses at MAIL
    // rather than after the whole body.
    if (link.caps?.size !== undefined && mail.declaredSize !== undefined) {
      line += ` SIZE=${mail.declaredSize}`;
    }
    if (link.caps?.pipelining === true) {
      // RFC 2920: MAIL goes out with the first RCPT (one local round trip less per message);
      // a local refusal of MAIL then becomes the refusal of every recipient (see #mailRefusal).
      return new LocalTransaction(this, link, mail, this.#log, { kind: "pending", line });
    }
    const r = await link.command(line, this.timeouts.commandMs);
    if (!isPositive(r)) {
      this.#log.warn("local_mail_refused", { to: this.where, code: r.code });
      if (!isMailOutOfStep(r)) return r;
      link.breakLink(`MAIL answered ${r.code}`);
      return LOCAL_REPLIES.unavailable;
    }
    return new LocalTransaction(this, link, mail, this.#log, { kind: "accepted" });
  }

  /** QUIT and close the local connection (end of the ATRN session). Never throws. */
  async close(): Promise<void> {
    const link = this.#link;
    this.#link = undefined;
    if (link === undefined) return;
    // A final reply may still be awaited (finishLater); QUIT's reply comes after it.
    await link.idle();
    if (link.isBroken) return;
    await link.link.quit(10_000);
    await link.link.conn.close().catch(() => {});
  }
}

/**
 * Why `mail` cannot go to this local server as it is, or undefined: a UTF-8 envelope without
 * its SMTPUTF8 (RFC 6531 §3.4), declared 8-bit content without its 8BITMIME (RFC 6152 §3;
 * undeclared 8-bit content is found in the body, `_local_transaction.ts`).
 */
function unfitReply(mail: MailFrom, link: LocalConnection): Reply | undefined {
  const isUtf8 = mail.params.smtputf8 === true || NON_ASCII.test(mail.address);
  if (isUtf8 && link.caps?.smtpUtf8 !== true) return LOCAL_REPLIES.needsSmtpUtf8;
  const isEightBit = mail.params.body !== undefined && mail.params.body !== "7BIT";
  if (isEightBit && link.caps?.eightBitMime !== true) return LOCAL_REPLIES.needs8BitMime;
  return undefined;
}

// deno-lint-ignore no-control-regex -- "not ASCII" is the test
const NON_ASCII = /[^\x00-\x7f]/;

/** Opens a TCP or unix-socket connection to the local server. */
async function openSocket(target: LocalTarget, timeoutMs: number): Promise<Conn> {
  const where = target.kind === "lmtpUnix"
    ? { path: target.path }
    : { host: target.host, port: target.port };
  // The local MTA is spoken to in plaintext: no TLS follows (src/net/native_conn.ts).
  return (await connect({ ...where, timeoutMs, plainOnly: true })).conn;
}
