/**
 * The `Received:` trace header a receiver prepends (RFC 5321 §4.4, protocol names RFC 3848).
 * Pure: the date and every name are arguments. Values from the peer are reduced to safe
 * characters so the header stays one header whatever the peer sent.
 */

/** Facts for one `Received:` header. */
export interface TraceInfo {
  /** The name the client gave in EHLO/HELO. */
  readonly heloName: string;
  readonly remoteAddress: string;
  /** Verified reverse DNS name, when known. */
  readonly reverseDns?: string;
  /** Our host name. */
  readonly hostname: string;
  readonly protocol: string;
  readonly id: string;
  /** Named only when the message has exactly one recipient (privacy). */
  readonly recipient?: string;
  readonly date: Date;
}

const encoder = new TextEncoder();
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** The header, folded, ending in CRLF, as bytes to write before the body. */
export function formatReceived(info: TraceInfo): Uint8Array {
  const ip = info.remoteAddress.includes(":") ? `IPv6:${info.remoteAddress}` : info.remoteAddress;
  const rdns = info.reverseDns === undefined ? "" : `${safeToken(info.reverseDns)} `;
  let text = `Received: from ${safeToken(info.heloName)} (${rdns}[${safeToken(ip)}])\r\n` +
    `\tby ${safeToken(info.hostname)} with ${safeToken(info.protocol)} id ${
      safeToken(info.id)
    }\r\n`;
  if (info.recipient !== undefined) text += `\tfor <${safeToken(info.recipient)}>`;
  text += `; ${formatDate(info.date)}\r\n`;
  return encoder.encode(text);
}

/** RFC 5322 §3.3 date-time in UTC: `Tue, 1 Jul 2003 10:52:37 +0000`. */
export function formatDate(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ` +
    `${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${
      pad(d.getUTCSeconds())
    } +0000`;
}

/** Keeps printable characters other than those that would end a token or comment. */
function safeToken(s: string): string {
  // deno-lint-ignore no-control-regex -- control characters would break the header
  const cleaned = s.replace(/[\x00-\x20\x7f()<>;\\"]/g, "?").slice(0, 255);
  return cleaned === "" ? "unknown" : cleaned;
}
