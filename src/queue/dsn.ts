/**
 * Builds a failure or delay DSN (RFC 3464 inside RFC 6522 multipart/report) as bytes: a
 * text/plain explanation, the message/delivery-status report and the original's headers (or,
 * with RET=FULL and a small message, the whole message); about an SMTPUTF8 original, RFC 6533's
 * message/global-delivery-status and message/global-headers (message/global), the returned part
 * base64 when it has 8-bit octets, unless the report goes with SMTPUTF8 anyway. Pure: no clock, no randomness, no
 * I/O; every line ends in CRLF and is at most 998 octets (RFC 5322 §2.1.1). Returned content with
 * 8-bit octets is declared 8bit, in its part and the message (RFC 2045 §6; the report is queued
 * with BODY=8BITMIME). A UTF-8 sender is written as it is in To: (RFC 6532 §3.2; a report to a
 * UTF-8 address goes with SMTPUTF8, src/smtp/_sender_commands.ts). Everything else is 7-bit: a
 * UTF-8 recipient is named by its RFC 6533 §3 utf-8 address, ORCPT and ENVID by what their xtext
 * encodes (RFC 3461 §4.2, §4.4), and a multi-line reply is one Diagnostic-Code, folded (RFC 3464
 * §2.3.6).
 */
import { encodeBase64 } from "../wire/base64.ts";
import { utf8AddrXtext } from "../wire/esmtp_params.ts";

/** One recipient the report is about. */
export interface DsnRecipient {
  /** Forward-path as queued (no angle brackets). */
  readonly address: string;
  /** ORCPT as received (`rfc822;user+2Bx@example.org`, xtext), if any. */
  readonly orcpt?: string;
  /** The last SMTP reply seen for it (`451 4.3.0 …`), if any: the Diagnostic-Code. */
  readonly lastReply?: string;
  /** RFC 3463 status; default EXPIRED_STATUS (DELAYED_STATUS in a delay report). */
  readonly status?: string;
}

/** What the report says and returns. */
export interface FailureDsnInput {
  /** Our host name: `Reporting-MTA: dns; <hostname>` and the From: domain. */
  readonly reportingMta: string;
  /** Unique id of the report (Message-ID left part and MIME boundary); [A-Za-z0-9] only. */
  readonly reportId: string;
  /** Queue id of the original (`Final-Log-ID`). */
  readonly originalId: string;
  /** Reverse-path of the original: the report's only recipient. */
  readonly originalSender: string;
  /** ENVID of the original as received (xtext), if given. */
  readonly envid?: string;
  /** When the original arrived, milliseconds since the epoch. */
  readonly arrivalDate: number;
  /**
   * The original came with SMTPUTF8 (RFC 6531): the report uses RFC 6533's types,
   * message/global-delivery-status and message/global(-headers).
   */
  readonly international?: boolean;
  /** Now, milliseconds since the epoch (Date: header). */
  readonly date: number;
  readonly recipients: readonly DsnRecipient[];
  /** The original's header block, or the whole original (RET=FULL, small); none: left out. */
  readonly returned?: { readonly kind: "headers" | "full"; readonly bytes: Uint8Array };
  /**
   * Why: the queue's time limit (default), a permanent refusal on the way, or (a delay
   * report, `Action: delayed`) still undelivered and still being tried.
   */
  readonly reason?: "expired" | "refused" | "delayed";
  /** A delay report: when the tries stop (`Will-Retry-Until`, RFC 3464 §2.3.9). */
  readonly willRetryUntil?: number;
}

/** RFC 3463 "delivery time expired", transient: the delay report's default status. */
export const DELAYED_STATUS = "4.4.7";

/** RFC 3463: "delivery time expired" (permanent: the message will not be tried again). */
export const EXPIRED_STATUS = "5.4.7";
/** Longest line RFC 5322 allows, without its CRLF. */
export const MAX_LINE_OCTETS = 998;

const CRLF = "\r\n";

/** The report as message bytes (headers and body), CRLF line ends. */
export function buildFailureDsn(input: FailureDsnInput): Uint8Array {
  const boundary = `=_dsn_${input.reportId}`;
  // Our name comes from the config, yet a value with a line break would end the header
  // block (#10): it is written like every other field, printable ASCII only.
  const host = printable(input.reportingMta);
  const isDelay = input.reason === "delayed";
  const isGlobal = input.international === true;
  const has8Bit = input.returned?.bytes.some((b) => b >= 0x80) ?? false;
  // RFC 6533 §4: toward a return path without SMTPUTF8 the returned message/global part takes a
  // 7-bit encoding (RFC 6532 §3.7 allows base64 there). Which peer takes the report is known
  // only when it goes, so it is base64 unless the report needs SMTPUTF8 anyway (a UTF-8 To:).
  const isBase64 = isGlobal && has8Bit && isAscii(input.originalSender);
  const is8Bit = has8Bit && !isBase64;
  const eightBit = is8Bit ? ["Content-Transfer-Encoding: 8bit"] : [];
  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${host}>`,
    `To: <${headerText(input.originalSender)}>`,
    isDelay
      ? "Subject: Delayed Mail (still being retried)"
      : "Subject: Undelivered Mail Returned to Sender",
    `Date: ${rfc5322Date(input.date)}`,
    `Message-ID: <${input.reportId}@${host}>`,
    // RFC 3834 §5: an automatic reply; responders must not answer it.
    "Auto-Submitted: auto-replied",
    "MIME-Version: 1.0",
    ...eightBit,
    `Content-Type: multipart/report; report-type=delivery-status;`,
    `\tboundary="${boundary}"`,
    "",
    "This is a MIME-encapsulated message.",
    "",
  ];
  const explanation = [
    `--${boundary}`,
    "Content-Type: text/plain; charset=us-ascii",
    "Content-Description: Notification",
    "",
    `This is the mail system at host ${host}.`,
    "",
    ...(isDelay
      ? [
        "Your message could not be delivered yet to the recipients below. It stays in the",
        "queue and delivery is tried again; you do not need to send it again.",
        ...(input.willRetryUntil !== undefined
          ? [`Delivery is tried until ${rfc5322Date(input.willRetryUntil)}.`]
          : []),
      ]
      : input.reason === "refused"
      ? [
        "Your message could not be delivered to the recipients below: it was refused",
        "permanently on the way (see the diagnostic code of each recipient).",
      ]
      : [
        "Your message could not be delivered to the recipients below: it waited in the",
        "queue longer than the time allowed and was removed (delivery time expired).",
      ]),
    "",
    ...input.recipients.map((r) => `  <${sevenBitAddress(r.address)}>`),
    "",
  ];
  const report = [
    `--${boundary}`,
    `Content-Type: message/${isGlobal ? "global-" : ""}delivery-status`,
    "Content-Description: Delivery report",
    "",
    `Reporting-MTA: dns; ${host}`,
    ...(input.envid !== undefined ? [`Original-Envelope-Id: ${decodedXtext(input.envid)}`] : []),
    `Arrival-Date: ${rfc5322Date(input.arrivalDate)}`,
    "",
  ];
  for (const r of input.recipients) {
    if (r.orcpt !== undefined) report.push(`Original-Recipient: ${originalRecipient(r.orcpt)}`);
    report.push(
      isAscii(r.address)
        ? `Final-Recipient: rfc822; ${printable(r.address)}`
        : `Final-Recipient: utf-8; ${sevenBitAddress(r.address)}`,
    );
    report.push(isDelay ? "Action: delayed" : "Action: failed");
    report.push(`Status: ${r.status ?? (isDelay ? DELAYED_STATUS : EXPIRED_STATUS)}`);
    if (r.lastReply !== undefined) {
      // A multi-line reply's lines, joined by spaces as Postfix writes them.
      const text = printable(r.lastReply.trim().replace(/\r\n|\r|\n/g, " "));
      report.push(...folded(`Diagnostic-Code: smtp; ${text}`));
    }
    report.push(`Final-Log-ID: ${printable(input.originalId)}`);
    if (isDelay && input.willRetryUntil !== undefined) {
      report.push(`Will-Retry-Until: ${rfc5322Date(input.willRetryUntil)}`);
    }
    report.push("");
  }
  const text = [...head, ...explanation, ...report].map(limitLine).join(CRLF) + CRLF;
  const parts: Uint8Array[] = [ascii(text)];
  const returned = input.returned;
  if (returned !== undefined) {
    const type = returned.kind === "full"
      ? (isGlobal ? "message/global" : "message/rfc822")
      : (isGlobal ? "message/global-headers" : "text/rfc822-headers");
    parts.push(ascii(`--${boundary}${CRLF}Content-Type: ${type}${CRLF}`));
    if (is8Bit) parts.push(ascii(`Content-Transfer-Encoding: 8bit${CRLF}`));
    if (isBase64) parts.push(ascii(`Content-Transfer-Encoding: base64${CRLF}`));
    parts.push(ascii(`Content-Description: Undelivered message${CRLF}${CRLF}`));
    const content = normalizeLines(returned.bytes);
    parts.push(isBase64 ? base64Lines(content) : content);
  }
  parts.push(ascii(`--${boundary}--${CRLF}`));
  return concat(parts);
}

/**
 * The header block of a message: the bytes up to and including the empty line (or the
 * first `maxBytes`, cut at a line end). Scans only what it is given.
 */
export function headerBlock(prefix: Uint8Array, maxBytes: number): Uint8Array {
  const limit = Math.min(prefix.length, maxBytes);
  let lineStart = 0;
  for (let i = 0; i < limit; i++) {
    if (prefix[i] !== 0x0a) continue;
    const line = i - lineStart;
    // An empty line (LF or CRLF alone) ends the header section.
    if (line === 0 || (line === 1 && prefix[lineStart] === 0x0d)) return prefix.subarray(0, i + 1);
    lineStart = i + 1;
  }
  return prefix.subarray(0, limit === prefix.length ? limit : lineStart);
}

/** `Tue, 01 Jul 2025 12:00:00 +0000` (RFC 5322 §3.3), in UTC. */
export function rfc5322Date(ms: number): string {
  return new Date(ms).toUTCString().replace(/GMT$/, "+0000");
}

/**
 * Copies returned content with every line ended by CRLF (bare CR or LF become CRLF) and
 * lines longer than 998 octets split, so the report is valid whatever the original held.
 */
function normalizeLines(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  let lineLength = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b === 0x0d || b === 0x0a) {
      if (b === 0x0d && bytes[i + 1] === 0x0a) i++;
      out.push(0x0d, 0x0a);
      lineLength = 0;
      continue;
    }
    if (lineLength === MAX_LINE_OCTETS) {
      // Folding whitespace keeps a split header line one field (RFC 5322 §2.2.3).
      out.push(0x0d, 0x0a, 0x20);
      lineLength = 1;
    }
    out.push(b);
    lineLength++;
  }
  if (lineLength > 0) out.push(0x0d, 0x0a);
  return Uint8Array.from(out);
}

/** `bytes` in base64, lines of 76 characters ended by CRLF (RFC 2045 §6.8). */
function base64Lines(bytes: Uint8Array): Uint8Array {
  const text = encodeBase64(bytes);
  let out = "";
  for (let i = 0; i < text.length; i += 76) out += text.slice(i, i + 76) + CRLF;
  return ascii(out);
}

/** Printable ASCII only: anything else (controls, 8-bit) becomes `?` in a report field. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?");
}

/** Text for a header under SMTPUTF8 (RFC 6532 §3.2): UTF-8 kept, controls (C0, DEL, C1) `?`. */
function headerText(text: string): string {
  // deno-lint-ignore no-control-regex -- controls are what is replaced
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, "?");
}

/**
 * What xtext `value` encodes (RFC 3461 §4: `+XX` is octet XX), when that is printable ASCII;
 * else `value` as received (7-bit already), so a decoded line break never ends a field.
 */
function decodedXtext(value: string): string {
  const octets: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const hex = value[i] === "+" ? value.slice(i + 1, i + 3) : "";
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      octets.push(parseInt(hex, 16));
      i += 2;
    } else {
      octets.push(value.charCodeAt(i));
    }
  }
  return octets.every((o) => o >= 0x20 && o <= 0x7e)
    ? String.fromCharCode(...octets)
    : printable(value);
}

/**
 * An ORCPT (`addr-type;xtext`) as Original-Recipient names it (RFC 3464 §2.3.1: the address
 * itself): decoded from xtext; a utf-8 one (RFC 6533 §3, sent as utf-8-addr-xtext or -unitext)
 * in its utf-8-addr-xtext form, the one a 7-bit delivery-status part holds.
 */
function originalRecipient(orcpt: string): string {
  const semi = orcpt.indexOf(";");
  if (semi <= 0) return printable(orcpt);
  const type = printable(orcpt.slice(0, semi));
  const value = orcpt.slice(semi + 1);
  if (type.toLowerCase() !== "utf-8") return `${type};${decodedXtext(value)}`;
  const address = value.replace(/\\x\{([0-9A-Fa-f]{1,6})\}/g, (whole, hex: string) => {
    const cp = parseInt(hex, 16);
    return cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? String.fromCodePoint(cp) : whole;
  });
  return `${type};${utf8AddrXtext(address)}`;
}

/** Lines a field is folded into after it reaches; a longer word stays whole up to 998. */
const FOLD_AT = 78;

/**
 * `field` folded at its spaces (RFC 5322 §2.2.3) into lines of at most FOLD_AT characters where
 * its words allow; unfolding gives it back. A word longer than a line is cut at 998 (limitLine).
 */
function folded(field: string): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of field.split(" ")) {
    if (line === "") {
      line = word;
    } else if (word !== "" && line.length + 1 + word.length > FOLD_AT) {
      lines.push(line);
      line = ` ${word}`;
    } else {
      line += ` ${word}`;
    }
  }
  lines.push(line);
  return lines;
}

/**
 * `address` in 7-bit: as it is when ASCII, else RFC 6533 §3 utf-8-addr-xtext (each character
 * outside QCHAR, non-ASCII or one of `+`, `=`, `\`, written `\x{HEX}`); controls become `?`.
 */
function sevenBitAddress(address: string): string {
  return isAscii(address) ? printable(address) : utf8AddrXtext(address);
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
}

function limitLine(line: string): string {
  return line.length > MAX_LINE_OCTETS ? line.slice(0, MAX_LINE_OCTETS) : line;
}

function ascii(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
