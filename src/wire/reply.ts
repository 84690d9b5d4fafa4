/**
 * SMTP replies as values (RFC 5321 §4.2, enhanced codes RFC 2034/3463): formatting for the
 * server role, incremental parsing for the client role. Pure; reply texts are in replies.ts.
 */

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

const encoder = new TextEncoder();

/** Serialises a reply with CRLF line ends; the enhanced code prefixes every line. */
export function formatReply(r: Reply): Uint8Array {
  return encoder.encode(formatReplyText(r));
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

const ENHANCED_RE = /^([245])\.(\d{1,3})\.(\d{1,3})(?: +|$)/;

/** Assembles multi-line replies line by line (client role). */
export class ReplyParser {
  #code = 0;
  #lines: string[] = [];
  readonly #maxLines: number;

  constructor(maxLines = 100) {
    this.#maxLines = maxLines;
  }

  /** Feeds one line without CRLF (ASCII, or UTF-8 under SMTPUTF8). */
  push(line: string): ReplyLineResult {
    const m = /^(\d{3})([ -]?)(.*)$/s.exec(line);
    if (!m) return { kind: "invalid", reason: "reply line without a 3-digit code" };
    const code = Number(m[1]);
    if (code < 200 || code > 599) return { kind: "invalid", reason: `reply code ${code}` };
    if (this.#lines.length > 0 && code !== this.#code) {
      return { kind: "invalid", reason: "reply code changed inside a multi-line reply" };
    }
    this.#code = code;
    this.#lines.push(m[3] ?? "");
    if (this.#lines.length > this.#maxLines) {
      return { kind: "invalid", reason: "too many reply lines" };
    }
    if (m[2] === "-") return { kind: "more" };
    const lines = this.#lines;
    this.#lines = [];
    return { kind: "done", reply: splitEnhanced(code, lines) };
  }
}

/** Moves a leading enhanced code out of the text when its class matches the reply code. */
function splitEnhanced(code: number, lines: string[]): Reply {
  const first = lines[0] ?? "";
  const m = ENHANCED_RE.exec(first);
  if (!m || Number(m[1]) !== Math.floor(code / 100)) return { code, lines };
  const enhanced = `${m[1]}.${m[2]}.${m[3]}`;
  const strip = (l: string) => {
    const mm = ENHANCED_RE.exec(l);
    return mm && `${mm[1]}.${mm[2]}.${mm[3]}` === enhanced ? l.slice(mm[0].length) : l;
  };
  return { code, enhanced, lines: lines.map(strip) };
}
