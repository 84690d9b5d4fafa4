/**
 * SMTP replies as values (RFC 5321 §4.2, enhanced codes RFC 2034/3463): formatting for the
 * server role, incremental parsing for the client role. Pure; reply texts are in replies.ts.
 */
import { encodeText } from "./bytes.ts";

/** One SMTP reply. `enhanced` is omitted for greetings, EHLO/HELO and 3xx (RFC 2034 §3). */
export interface Reply {
  readonly code: number;
  readonly enhanced?: string;
  /** One entry per line; never contains CR or LF. */
  readonly lines: readonly string[];
}

/** Builds a one-line reply. */
export function reply(code: number, enhanced: string | undefined, text: string): Reply {
  return enhanced === undefined ? { code, lines: [text] } : { code, enhanced, lines: [text] };
}

/** Serialises a reply with CRLF line ends; the enhanced code prefixes every line. */
export function formatReply(r: Reply): Uint8Array {
  return encodeText(formatReplyText(r));
}

/** The reply as text (for logs and tests). */
export function formatReplyText(r: Reply): string {
  const lines = r.lines.length > 0 ? r.lines : [""];
  let out = "";
  lines.forEach((line, i) => {
    const sep = i === lines.length - 1 ? " " : "-";
    const text = r.enhanced === undefined
      ? line
      : (line === "" ? r.enhanced : `${r.enhanced} ${line}`);
    out += `${r.code}${sep}${text}\r\n`;
  });
  return out;
}

/** True for 2xx. */
export function isPositive(r: Reply): boolean {
  return r.code >= 200 && r.code < 300;
}

/** True for 4xx. */
export function isTransient(r: Reply): boolean {
  return r.code >= 400 && r.code < 500;
}

/** True for 5xx. */
export function isPermanent(r: Reply): boolean {
  return r.code >= 500 && r.code < 600;
}

/** Result of feeding one line to a ReplyParser. */
export type ReplyLineResult =
  | { readonly kind: "more" }
  | { readonly kind: "done"; readonly reply: Reply }
  | { readonly kind: "invalid"; readonly reason: string };

const MORE: ReplyLineResult = { kind: "more" };
const NO_CODE: ReplyLineResult = { kind: "invalid", reason: "reply line without a 3-digit code" };

/** Assembles multi-line replies line by line (client role). */
export class ReplyParser {
  #code = 0;
  #lines: string[] = [];
  readonly #maxLines: number;

  constructor(maxLines = 100) {
    this.#maxLines = maxLines;
  }

  /**
   * Feeds one line without CRLF (ASCII, or UTF-8 under SMTPUTF8): three digits, then "-" (more
   * lines follow), " " or nothing, then the text.
   */
  push(line: string): ReplyLineResult {
    const d0 = line.charCodeAt(0) - 0x30;
    const d1 = line.charCodeAt(1) - 0x30;
    const d2 = line.charCodeAt(2) - 0x30;
    // NaN (a short line) fails these tests too.
    if (!(d0 >= 0 && d0 <= 9 && d1 >= 0 && d1 <= 9 && d2 >= 0 && d2 <= 9)) return NO_CODE;
    const code = d0 * 100 + d1 * 10 + d2;
    if (code < 200 || code > 599) return { kind: "invalid", reason: `reply code ${code}` };
    if (this.#lines.length > 0 && code !== this.#code) {
      return { kind: "invalid", reason: "reply code changed inside a multi-line reply" };
    }
    const sep = line.charCodeAt(3);
    const hasSep = sep === 0x20 || sep === 0x2d; // " " or "-"
    this.#code = code;
    this.#lines.push(line.slice(hasSep ? 4 : 3));
    if (this.#lines.length > this.#maxLines) {
      return { kind: "invalid", reason: "too many reply lines" };
    }
    if (sep === 0x2d) return MORE;
    const lines = this.#lines;
    this.#lines = [];
    return { kind: "done", reply: splitEnhanced(code, lines) };
  }
}

/**
 * Moves a leading enhanced code (`class.subject.detail`, RFC 3463: class 2, 4 or 5, then one
 * to three digits twice, then spaces or the end of the line) out of the text when its class
 * matches the reply code; later lines lose it when they carry the same one.
 */
function splitEnhanced(code: number, lines: string[]): Reply {
  const first = lines[0] ?? "";
  const end = enhancedEnd(first);
  if (end < 0 || first.charCodeAt(0) - 0x30 !== Math.floor(code / 100)) return { code, lines };
  const enhanced = first.slice(0, end);
  const stripped = lines.map((l) => {
    const e = enhancedEnd(l);
    return e === end && l.startsWith(enhanced) ? l.slice(afterSpaces(l, e)) : l;
  });
  return { code, enhanced, lines: stripped };
}

/** End of the enhanced code `l` starts with (before its spaces), or -1 when none does. */
function enhancedEnd(l: string): number {
  const c = l.charCodeAt(0);
  if ((c !== 0x32 && c !== 0x34 && c !== 0x35) || l.charCodeAt(1) !== 0x2e) return -1;
  const subjectEnd = digitsEnd(l, 2);
  if (subjectEnd < 0 || l.charCodeAt(subjectEnd) !== 0x2e) return -1;
  const detailEnd = digitsEnd(l, subjectEnd + 1);
  if (detailEnd < 0 || (detailEnd < l.length && l.charCodeAt(detailEnd) !== 0x20)) return -1;
  return detailEnd;
}

/** End of one to three digits at `from`, -1 without any or with a fourth. */
function digitsEnd(l: string, from: number): number {
  let i = from;
  while (i < from + 4 && isDigit(l.charCodeAt(i))) i++;
  return i === from || i === from + 4 ? -1 : i;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function afterSpaces(l: string, from: number): number {
  let i = from;
  while (l.charCodeAt(i) === 0x20) i++;
  return i;
}
