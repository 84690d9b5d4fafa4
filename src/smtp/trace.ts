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

/**
 * The header, folded, ending in CRLF, as bytes to write before the body. Every line after the
 * first starts with a tab (RFC 5322 §2.2.3) and the `; date` part ends the last clause's line,
 * whether or not a `for` clause is written (#10: it once began a line of its own, which ended
 * the header block for strict readers). Each value is at most 255 octets, so no line reaches
 * the 998-octet limit (RFC 5322 §2.1.1).
 */
export function formatReceived(info: TraceInfo): Uint8Array {
  const ip = info.remoteAddress.includes(":") ? `IPv6:${info.remoteAddress}` : info.remoteAddress;
  const rdns = info.reverseDns === undefined ? "" : `${safeToken(info.reverseDns, false)} `;
  const by = `by ${safeToken(info.hostname, false)} with ${safeToken(info.protocol, false)} id ${
    safeToken(info.id, false)
  }`;
  const last = info.recipient === undefined
    ? by
    : `${by}\r\n\tfor <${safeToken(info.recipient, true)}>`;
  // One string, not lines joined: an array and a join less for every message (#13).
  return asciiBytes(
    `Received: from ${safeToken(info.heloName, false)} (${rdns}[${safeToken(ip, false)}])\r\n` +
      `\t${last}; ${dateOf(info.date)}\r\n`,
  );
}

/**
 * UTF-8 of `text`: an ASCII text (nearly every header) in one `encodeInto` (a fast call) into an
 * array of its length; a text with any other character needs more octets than that, does not
 * fit, and is encoded whole instead.
 */
function asciiBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  return encoder.encodeInto(text, out).read === text.length ? out : encoder.encode(text);
}

let lastSecond = NaN;
let lastDate = "";

/** formatDate, kept for the second (every message of that second has the same). */
function dateOf(d: Date): string {
  const second = Math.floor(d.getTime() / 1000);
  if (second !== lastSecond) {
    lastDate = formatDate(d);
    lastSecond = second;
  }
  return lastDate;
}

/** RFC 5322 §3.3 date-time in UTC: `Tue, 1 Jul 2003 10:52:37 +0000`. */
export function formatDate(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ` +
    `${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${
      pad(d.getUTCSeconds())
    } +0000`;
}

/** Longest value written, in octets (a domain's limit, RFC 5321 §4.5.3.1.2). */
const MAX_VALUE_OCTETS = 255;
/** 1 to 255 printable ASCII characters, none of `()<>;\"`: what safeToken keeps as it is. */
const SAFE_ASCII = /^[\x21\x23-\x27\x2a-\x3a\x3d\x3f-\x5b\x5d-\x7e]{1,255}$/;

/**
 * Keeps printable characters other than those that would end a token or comment, and at
 * most MAX_VALUE_OCTETS of UTF-8 (cut at a character boundary). Non-ASCII is kept only where
 * asked: a UTF-8 recipient exists only under SMTPUTF8, where RFC 6532 allows it in a header;
 * a peer's HELO name is no reason to put 8-bit into a 7-bit message.
 */
function safeToken(s: string, keepUtf8: boolean): string {
  // Already safe (the usual HELO name, address, host name, id): nothing to replace or cut.
  if (SAFE_ASCII.test(s)) return s;
  const cleaned = keepUtf8
    // deno-lint-ignore no-control-regex -- control characters would break the header
    ? s.replace(/[\x00-\x20\x7f-\x9f()<>;\\"\u2028\u2029]/g, "?")
    : s.replace(/[^\x21-\x7e]|[()<>;\\"]/g, "?");
  // Mostly ASCII (always without keepUtf8): one octet per character, no walk needed.
  if (!/[\u0080-\uffff]/.test(cleaned)) {
    return cleaned === "" ? "unknown" : cleaned.slice(0, MAX_VALUE_OCTETS);
  }
  let octets = 0;
  let out = "";
  for (const ch of cleaned) {
    octets += utf8Octets(ch.codePointAt(0) ?? 0);
    if (octets > MAX_VALUE_OCTETS) break;
    out += ch;
  }
  return out === "" ? "unknown" : out;
}

/** Octets of one code point in UTF-8 (a lone surrogate becomes U+FFFD: 3, as TextEncoder does). */
function utf8Octets(cp: number): number {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}
