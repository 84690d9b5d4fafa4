/**
 * The SMTP server role's session state and its pure guards (docs/architecture.md
 * "Conventions"): each `check*` reads the state and the argument text and returns the parsed
 * value or the rejection Reply. No I/O, no sink calls; the handlers apply them and the loop in
 * receiver.ts applies the handlers' Outcomes.
 */
import type { MailFrom, RcptTo, SinkTransaction } from "./sink.ts";
import type { MessageParams } from "../queue/types.ts";
import type { Reply } from "../wire/reply.ts";
import { LAST_ENDS_TRANSACTION } from "../wire/ehlo.ts";
import type { BodyLineCheck } from "../wire/body_check.ts";
import type { ReceivedCount } from "../wire/received_count.ts";
import { REPLIES } from "../wire/replies.ts";
import { parseMailArgument, parseRcptArgument } from "../wire/address.ts";
import type { PathFault } from "../wire/address.ts";
import { parseMailParameters, parseRcptParameters } from "../wire/esmtp_params.ts";
import type { ParamFault } from "../wire/esmtp_params.ts";

/** What the client said in EHLO/HELO. */
export interface Helo {
  readonly name: string;
  /** EHLO (true) or HELO (false). */
  readonly isExtended: boolean;
}

/**
 * One mail transaction: created at MAIL, dropped at RSET, end of data or error. A command
 * that changes it returns a new one in its Outcome (the sink transaction stays the same).
 */
export interface Transaction {
  readonly sink: SinkTransaction;
  readonly mail: MailFrom;
  /** Accepted recipients, in order; RCPT appends to it in place (_receiver_mail.ts). */
  readonly recipients: RcptTo[];
  /**
   * Keys of `recipients` (_receiver_mail.ts `recipientKey`), to take a repeated RCPT once; made
   * at the second RCPT, so that a message for one recipient pays nothing.
   */
  readonly recipientKeys?: Set<string>;
  /** Set by the first BDAT chunk: DATA is then refused (RFC 3030 §3). */
  readonly isChunking: boolean;
  /** Body octets received so far by BDAT. */
  readonly chunkedBytes: number;
  /**
   * When the BDAT body must have ended (`performance.now()` time), set by its first chunk: the
   * deadline bounds the chunks together, not each (_receiver_body.ts `bodyDeadlineAt`).
   */
  readonly chunksDeadlineAt: number;
  /** The line check of BDAT chunks, across chunks (DATA checks in its decoder). */
  readonly bodyLines: BodyLineCheck;
  /** The Received fields of the body written to the sink, across chunks (loop check). */
  readonly received: ReceivedCount;
}

/** Where the session is. */
export type SessionState =
  | { readonly kind: "greeted" }
  | { readonly kind: "ready"; readonly helo: Helo }
  | { readonly kind: "inTransaction"; readonly helo: Helo; readonly tx: Transaction };

export type StateKind = SessionState["kind"];

/** Session facts the guards need. */
export interface CheckContext {
  readonly maxMessageBytes: number;
  readonly maxRecipients: number;
  readonly messagesAccepted: number;
  readonly maxMessagesPerSession: number | undefined;
  /** PRDR is offered (the customer after ATRN); otherwise its MAIL parameter is unknown. */
  readonly offersPrdr: boolean;
}

/** A guard's answer. */
export type Checked<T> = { readonly ok: true; readonly value: T } | {
  readonly ok: false;
  readonly reply: Reply;
};

function reject<T>(r: Reply): Checked<T> {
  return { ok: false, reply: r };
}

function accept<T>(value: T): Checked<T> {
  return { ok: true, value };
}

/** EHLO/HELO: the first word is the client's name; anything after it is ignored. */
export function checkHelo(args: string, isExtended: boolean): Checked<Helo> {
  const name = args.split(" ")[0] ?? "";
  if (name === "") return reject(REPLIES.heloSyntax);
  return accept({ name, isExtended });
}

/** EHLO keywords: capabilities follow from the state (STARTTLS only when not yet secure). */
export function ehloKeywords(opts: {
  readonly maxMessageBytes: number;
  readonly canStartTls: boolean;
  readonly offersPrdr?: boolean;
  /** Say `LAST_ENDS_TRANSACTION` (wire/ehlo.ts; the customer after ATRN). */
  readonly saysLastEnds?: boolean;
  /** Mechanisms for an `AUTH` keyword (RFC 4954 §3); none: no keyword. */
  readonly authMechanisms?: readonly string[];
}): string[] {
  const keywords = [
    "PIPELINING",
    `SIZE ${opts.maxMessageBytes}`,
    "8BITMIME",
    "ENHANCEDSTATUSCODES",
    "SMTPUTF8",
    "CHUNKING",
  ];
  if (opts.offersPrdr === true) keywords.push("PRDR");
  if (opts.saysLastEnds === true) keywords.push(LAST_ENDS_TRANSACTION);
  if (opts.canStartTls) keywords.push("STARTTLS");
  const mechs = opts.authMechanisms ?? [];
  if (mechs.length > 0) keywords.push(`AUTH ${mechs.join(" ")}`);
  return keywords;
}

function pathFaultReply(fault: PathFault, isMail: boolean): Reply {
  switch (fault) {
    case "syntax":
      return isMail ? REPLIES.mailSyntax : REPLIES.rcptSyntax;
    case "nullNotAllowed":
      return REPLIES.nullRecipient;
    case "localPartTooLong":
    case "domainTooLong":
    case "pathTooLong":
    case "badDomain":
      return isMail ? REPLIES.badSenderAddress : REPLIES.badRecipientAddress;
    default: {
      const never: never = fault;
      throw new Error(`unhandled path fault ${never}`);
    }
  }
}

function paramFaultReply(fault: ParamFault): Reply {
  switch (fault) {
    case "unknown":
      return REPLIES.paramUnknown;
    case "duplicate":
      return REPLIES.paramDuplicate;
    case "syntax":
    case "badValue":
      return REPLIES.paramSyntax;
    default: {
      const never: never = fault;
      throw new Error(`unhandled parameter fault ${never}`);
    }
  }
}

/** MAIL FROM in state `ready`: the parsed reverse-path and parameters. */
export function checkMail(helo: Helo, args: string, ctx: CheckContext): Checked<MailFrom> {
  if (
    ctx.maxMessagesPerSession !== undefined && ctx.messagesAccepted >= ctx.maxMessagesPerSession
  ) {
    return reject(REPLIES.tooManyMessages);
  }
  const path = parseMailArgument(args);
  if (!path.ok) return reject(pathFaultReply(path.fault, true));
  // Parameters exist only for a client that said EHLO (RFC 5321 §4.1.1.11).
  if (!helo.isExtended && path.params !== "") return reject(REPLIES.paramUnknown);
  const parsed = parseMailParameters(path.params);
  if (!parsed.ok) return reject(paramFaultReply(parsed.fault));
  const p = parsed.params;
  if (p.body === "BINARYMIME") return reject(REPLIES.paramUnknown); // not offered
  if (p.prdr === true && !ctx.offersPrdr) return reject(REPLIES.paramUnknown);
  if (path.mailbox.isUtf8 && p.smtputf8 !== true) return reject(REPLIES.nonAsciiAddress);
  if (p.size !== undefined && p.size > ctx.maxMessageBytes) return reject(REPLIES.sizeExceeded);
  const params: MessageParams = {
    ...(p.body !== undefined ? { body: p.body } : {}),
    ...(p.smtputf8 === true ? { smtputf8: true } : {}),
    ...(p.ret !== undefined ? { ret: p.ret } : {}),
    ...(p.envid !== undefined ? { envid: p.envid } : {}),
  };
  return accept({
    address: path.mailbox.address,
    params,
    ...(p.size !== undefined ? { declaredSize: p.size } : {}),
    ...(p.prdr === true ? { prdr: true } : {}),
  });
}

/** RCPT TO in state `inTransaction`: the parsed forward-path, before the sink decides. */
export function checkRcpt(tx: Transaction, args: string, ctx: CheckContext): Checked<RcptTo> {
  if (tx.isChunking) return reject(REPLIES.badSequence);
  const path = parseRcptArgument(args);
  if (!path.ok) return reject(pathFaultReply(path.fault, false));
  const parsed = parseRcptParameters(path.params);
  if (!parsed.ok) return reject(paramFaultReply(parsed.fault));
  if (path.mailbox.isUtf8 && tx.mail.params.smtputf8 !== true) {
    return reject(REPLIES.nonAsciiAddress);
  }
  if (tx.recipients.length >= ctx.maxRecipients) return reject(REPLIES.tooManyRecipients);
  const p = parsed.params;
  return accept({
    address: path.mailbox.address,
    domain: path.mailbox.domain,
    ...(p.notify !== undefined ? { notify: p.notify } : {}),
    ...(p.orcpt !== undefined ? { orcpt: p.orcpt } : {}),
  });
}

/** DATA in state `inTransaction`. */
export function checkData(tx: Transaction, args: string): Checked<true> {
  if (args !== "") return reject(REPLIES.noParameters);
  if (tx.isChunking) return reject(REPLIES.mixedDataBdat);
  if (tx.recipients.length === 0) return reject(REPLIES.noValidRecipients);
  return accept(true);
}

/** A parsed BDAT command. */
export interface BdatCommand {
  readonly octets: number;
  readonly isLast: boolean;
}

const BDAT_RE = /^([0-9]{1,15})(?: +(LAST))?$/i;

/**
 * BDAT arguments. `octets` is returned even for a bad command when the count could be read,
 * so the caller can still consume the chunk and stay in sync (RFC 3030 §3).
 */
export function checkBdat(
  args: string,
): { ok: true; value: BdatCommand } | { ok: false; reply: Reply; octets: number | undefined } {
  const m = BDAT_RE.exec(args);
  if (m) return { ok: true, value: { octets: Number(m[1]), isLast: m[2] !== undefined } };
  const count = /^([0-9]{1,15})(?: |$)/.exec(args);
  return { ok: false, reply: REPLIES.bdatSyntax, octets: count ? Number(count[1]) : undefined };
}

/** BDAT in some state: may the chunk go into the transaction, or which rejection. */
export function checkBdatState(state: SessionState): Checked<Transaction> {
  if (state.kind !== "inTransaction") {
    return reject(state.kind === "greeted" ? REPLIES.heloFirst : REPLIES.mailFirst);
  }
  if (state.tx.recipients.length === 0) return reject(REPLIES.noValidRecipients);
  return accept(state.tx);
}

/**
 * STARTTLS: allowed when offered, after EHLO, not yet secure and without parameters. Before
 * EHLO the client cannot know it is offered (RFC 3207 §4: it is an EHLO keyword), so that is
 * a bad sequence, `503 5.5.1` (#10).
 */
export function checkStartTls(
  args: string,
  opts: { readonly isOffered: boolean; readonly isSecure: boolean; readonly hasGreeted: boolean },
): Reply | undefined {
  if (opts.isSecure) return REPLIES.alreadySecure;
  if (!opts.isOffered) return REPLIES.notImplemented;
  if (!opts.hasGreeted) return REPLIES.heloFirst;
  if (args !== "") return REPLIES.noParameters;
  return undefined;
}
