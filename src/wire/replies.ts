/**
 * Every reply text the SMTP server role sends, in one place (docs/architecture.md "Conventions"), so one wording is
 * used everywhere. Texts are short and generic: reasons go to the log, never to the peer.
 * Enhanced codes per RFC 3463 / docs/protocol.md §5.4; none on the greeting, EHLO/HELO or 3xx.
 */
import { formatReply, reply } from "./reply.ts";
import type { Reply } from "./reply.ts";

/** Fixed replies of the SMTP server role. */
export const REPLIES = {
  ok: reply(250, "2.0.0", "OK"),
  senderOk: reply(250, "2.1.0", "Sender OK"),
  recipientOk: reply(250, "2.1.5", "Recipient OK"),
  resetOk: reply(250, "2.0.0", "Reset OK"),
  bye: reply(221, "2.0.0", "Bye"),
  startData: reply(354, undefined, "Start mail input; end with <CRLF>.<CRLF>"),
  startTls: reply(220, "2.0.0", "Ready to start TLS"),
  // draft-hall-prdr-00: the replies per recipient follow, then the final one.
  prdrBegins: reply(353, undefined, "PRDR content analysis beginning"),
  prdrAccepted: reply(250, "2.0.0", "Message accepted, see the reply for each recipient"),
  vrfy: reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"),
  help: reply(214, "2.0.0", "See RFC 5321"),

  unknownCommand: reply(500, "5.5.1", "Command unrecognized"),
  // RFC 5321 §4.2.2 500 (syntax), as Postfix's "500 5.5.2 Error: bad syntax": no command at all.
  emptyCommand: reply(500, "5.5.2", "Syntax error, empty command"),
  authRequired: reply(530, "5.7.0", "Authentication required"),
  alreadyAuthenticated: reply(503, "5.5.1", "Already authenticated"),
  lineTooLong: reply(500, "5.5.2", "Line too long"),
  badCharacters: reply(500, "5.5.2", "Invalid characters in command"),
  bareNewlineCommand: reply(500, "5.5.2", "Bare CR or LF not allowed"),
  badSequence: reply(503, "5.5.1", "Bad sequence of commands"),
  heloFirst: reply(503, "5.5.1", "Send EHLO or HELO first"),
  nestedMail: reply(503, "5.5.1", "Sender already specified"),
  mailFirst: reply(503, "5.5.1", "Send MAIL first"),
  noValidRecipients: reply(554, "5.5.1", "No valid recipients"),
  mixedDataBdat: reply(503, "5.5.1", "DATA and BDAT cannot be mixed"),
  alreadySecure: reply(503, "5.5.1", "TLS already active"),
  notImplemented: reply(502, "5.5.1", "Command not implemented"),
  heloSyntax: reply(501, "5.5.4", "Syntax: EHLO hostname"),
  noParameters: reply(501, "5.5.4", "Syntax error (no parameters allowed)"),
  mailSyntax: reply(501, "5.5.4", "Syntax: MAIL FROM:<address> [parameters]"),
  rcptSyntax: reply(501, "5.5.4", "Syntax: RCPT TO:<address> [parameters]"),
  bdatSyntax: reply(501, "5.5.4", "Syntax: BDAT octets [LAST]"),
  badSenderAddress: reply(501, "5.1.7", "Bad sender address syntax"),
  badRecipientAddress: reply(501, "5.1.3", "Bad recipient address syntax"),
  nullRecipient: reply(501, "5.1.3", "Null recipient not allowed"),
  paramSyntax: reply(501, "5.5.4", "Invalid parameter syntax"),
  paramDuplicate: reply(501, "5.5.4", "Duplicate parameter"),
  paramUnknown: reply(555, "5.5.4", "Unsupported parameter"),
  nonAsciiAddress: reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"),
  sizeExceeded: reply(552, "5.3.4", "Message size exceeds fixed maximum message size"),
  chunkTooBig: reply(552, "5.3.4", "Chunk exceeds message size limit, closing connection"),
  tooManyRecipients: reply(452, "4.5.3", "Too many recipients"),
  bareNewlineData: reply(550, "5.5.2", "Bare CR or LF not allowed"),
  dataLineTooLong: reply(554, "5.6.0", "Message line too long"),
  // RFC 3463 X.4.6: routing loop detected (too many Received fields, RFC 5321 §6.3).
  tooManyHops: reply(554, "5.4.6", "Too many hops (Received fields): mail loop"),
  localError: reply(451, "4.3.0", "Local error in processing, try again later"),
  storageFull: reply(452, "4.3.1", "Insufficient system storage"),
  relayDenied: reply(550, "5.7.1", "Relaying denied"),
  tooManyErrors: reply(421, "4.7.0", "Too many errors, closing connection"),
  tooManyIdleCommands: reply(
    421,
    "4.7.0",
    "Too many commands without progress, closing connection",
  ),
  tooManyAttempts: reply(
    421,
    "4.7.0",
    "Too many transactions without a message, closing connection",
  ),
  tooManyRecipientAttempts: reply(
    421,
    "4.7.0",
    "Too many recipients without a message, closing connection",
  ),
  tooManyMessages: reply(421, "4.7.0", "Too many messages in one session, closing connection"),
  idleTimeout: reply(421, "4.4.2", "Idle timeout, closing connection"),
  authTimeout: reply(421, "4.7.0", "Authentication timeout, closing connection"),
  shuttingDown: reply(421, "4.3.2", "Service shutting down, closing connection"),
  internalError: reply(421, "4.3.0", "Internal error, closing connection"),
} as const satisfies Record<string, Reply>;

/**
 * Replies whose bytes are encoded once: the fixed ones, and those built from configuration
 * (the greeting, the EHLO reply) that every connection is sent.
 */
const KNOWN_BYTES = new Map<Reply, Uint8Array>(
  Object.values(REPLIES).map((r) => [r, formatReply(r)]),
);

/** Replies built from configuration, by code and lines (a handful per configuration). */
const BUILT = new Map<string, Reply>();
const MAX_BUILT = 64;

/**
 * A reply as bytes to write. A fixed or configured reply's bytes are shared by every session:
 * a caller writes them and never changes them.
 */
export function replyBytes(r: Reply): Uint8Array {
  return KNOWN_BYTES.get(r) ?? formatReply(r);
}

/** One Reply object (and one encoding) per distinct configured text; bounded. */
function configured(code: number, lines: readonly string[]): Reply {
  // Compared as they are first (a handful of entries): no key string to build at every
  // greeting and EHLO of every connection.
  for (const r of BUILT.values()) if (sameReply(r, code, lines)) return r;
  const key = `${code}\n${lines.join("\n")}`;
  const known = BUILT.get(key);
  if (known !== undefined) return known;
  const r: Reply = { code, lines: [...lines] };
  if (BUILT.size < MAX_BUILT) {
    BUILT.set(key, r);
    KNOWN_BYTES.set(r, formatReply(r));
  }
  return r;
}

function sameReply(r: Reply, code: number, lines: readonly string[]): boolean {
  if (r.code !== code || r.enhanced !== undefined || r.lines.length !== lines.length) return false;
  for (let i = 0; i < lines.length; i++) if (r.lines[i] !== lines[i]) return false;
  return true;
}

/** The 220 greeting; no enhanced code (RFC 2034 §3). */
export function greetingReply(text: string): Reply {
  return configured(220, [text]);
}

/** The default greeting text. */
export function defaultGreetingText(hostname: string): string {
  return `${hostname} ESMTP ready`;
}

/** 250 to HELO: one line, no enhanced code. */
export function heloReply(hostname: string): Reply {
  return configured(250, [hostname]);
}

/** 250 to EHLO: our name, then one keyword a line; no enhanced code. */
export function ehloReply(hostname: string, keywords: readonly string[]): Reply {
  return configured(250, [hostname, ...keywords]);
}

/** 250 to one non-final BDAT chunk (RFC 3030 §4). */
export function bdatChunkReply(octets: number): Reply {
  return reply(250, "2.0.0", `${octets} octets received`);
}

/** 250 after the message is durably queued. */
export function queuedReply(id: string): Reply {
  return reply(250, "2.6.0", `Message accepted for delivery as ${id}`);
}
