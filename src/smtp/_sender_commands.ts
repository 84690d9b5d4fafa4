/**
 * Pure checks and command lines for one outbound transaction: decides whether a message may
 * be offered to this peer at all (8BITMIME, SMTPUTF8, addresses) and builds MAIL/RCPT lines
 * with only the parameters the peer offered. Strict on send: `MAIL FROM:<…>`, no space.
 */
import type { Capabilities } from "../wire/ehlo.ts";
import type { Reply } from "../wire/reply.ts";
import type { MessageParams } from "../queue/types.ts";
import { SENDER_REPLIES } from "./_sender_replies.ts";

/** One recipient as the sender gets it. */
export interface OutboundRecipient {
  /** Caller's id (queue row id), echoed in the result. */
  readonly id: number;
  /** Forward-path without angle brackets. */
  readonly address: string;
  /** RFC 3461 NOTIFY value as received (forwarded only when the peer offers DSN). */
  readonly notify?: string;
  /** RFC 3461 ORCPT value `addr-type;xtext` (forwarded only when the peer offers DSN). */
  readonly orcpt?: string;
}

/** What a transaction will send: the MAIL line and, per recipient, a RCPT line or a refusal. */
export type EnvelopePlan =
  | {
    readonly kind: "send";
    readonly mailLine: string;
    /** MAIL asks for one reply per recipient after the body (PRDR). */
    readonly isPrdr: boolean;
    /** Same order as the message's recipients. */
    readonly rcptLines: readonly (string | { readonly refused: Reply })[];
  }
  /** The whole message cannot go to this peer; every recipient gets `reply`. */
  | { readonly kind: "refused"; readonly reply: Reply };

// Controls and angle brackets would break the command line (CR/LF would be command injection).
// deno-lint-ignore no-control-regex -- control characters are what is refused
const BAD_PATH_RE = /[\x00-\x1f\x7f<>]/;
// deno-lint-ignore no-control-regex -- "not ASCII" is the test
const NON_ASCII_RE = /[^\x00-\x7f]/;
const NOTIFY_RE = /^(?:NEVER|(?:SUCCESS|FAILURE|DELAY)(?:,(?:SUCCESS|FAILURE|DELAY))*)$/i;
const XTEXT_RE = /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/;
const ORCPT_RE = /^([A-Za-z0-9][A-Za-z0-9-]*);(.+)$/s;
/** RFC 3461 §4.4: ENVID is at most 100 characters. */
const MAX_ENVID_CHARS = 100;

/** Decides what to send for `message` to a peer with `caps`. */
export function planEnvelope(
  message: {
    readonly mailFrom: string;
    readonly params: MessageParams;
    readonly size: number;
    readonly recipients: readonly OutboundRecipient[];
  },
  caps: Capabilities,
): EnvelopePlan {
  const { params } = message;
  if (params.body === "BINARYMIME") {
    return { kind: "refused", reply: SENDER_REPLIES.needsBinaryMime };
  }
  if (params.body === "8BITMIME" && !caps.eightBitMime) {
    return { kind: "refused", reply: SENDER_REPLIES.needs8BitMime };
  }
  if (BAD_PATH_RE.test(message.mailFrom)) {
    return { kind: "refused", reply: SENDER_REPLIES.badSender };
  }
  const needsUtf8 = params.smtputf8 === true || NON_ASCII_RE.test(message.mailFrom) ||
    message.recipients.some((r) => NON_ASCII_RE.test(r.address));
  if (needsUtf8 && !caps.smtpUtf8) return { kind: "refused", reply: SENDER_REPLIES.needsSmtpUtf8 };

  let mailLine = `MAIL FROM:<${message.mailFrom}>`;
  if (caps.size !== undefined) mailLine += ` SIZE=${Math.max(0, Math.floor(message.size))}`;
  if (caps.eightBitMime && params.body !== undefined) mailLine += ` BODY=${params.body}`;
  if (needsUtf8) mailLine += " SMTPUTF8";
  if (caps.dsn) {
    if (params.ret !== undefined) mailLine += ` RET=${params.ret}`;
    const envid = params.envid === undefined ? undefined : toXtext(params.envid);
    if (envid !== undefined && envid.length <= MAX_ENVID_CHARS) mailLine += ` ENVID=${envid}`;
  }

  const rcptLines: (string | { readonly refused: Reply })[] = message.recipients.map((r) => {
    if (r.address === "" || BAD_PATH_RE.test(r.address)) {
      return { refused: SENDER_REPLIES.badRecipient };
    }
    let line = `RCPT TO:<${r.address}>`;
    if (caps.dsn) {
      if (r.notify !== undefined && NOTIFY_RE.test(r.notify)) {
        line += ` NOTIFY=${r.notify.toUpperCase()}`;
      }
      const orcpt = r.orcpt === undefined ? undefined : toOrcpt(r.orcpt);
      if (orcpt !== undefined) line += ` ORCPT=${orcpt}`;
    }
    return line;
  });
  // draft-hall-prdr-00: with several recipients, ask for a reply per recipient after the body,
  // so that one recipient's refusal (an LMTP mailbox full) never holds back the others.
  const isPrdr = caps.keywords.has("PRDR") &&
    rcptLines.filter((l) => typeof l === "string").length > 1;
  if (isPrdr) mailLine += " PRDR";
  return { kind: "send", mailLine, isPrdr, rcptLines };
}

/** Passes valid xtext through (it is stored as received); encodes anything else (RFC 3461 §4). */
export function toXtext(value: string): string {
  if (XTEXT_RE.test(value)) return value;
  let out = "";
  for (const byte of new TextEncoder().encode(value)) {
    out += byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d
      ? String.fromCharCode(byte)
      : `+${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function toOrcpt(value: string): string | undefined {
  const m = ORCPT_RE.exec(value);
  if (!m || m[1] === undefined || m[2] === undefined) return undefined;
  return `${m[1]};${toXtext(m[2])}`;
}
