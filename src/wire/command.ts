/**
 * Splits one SMTP command line (bytes, CRLF already removed) into verb and argument text.
 * ASCII only, or validated UTF-8 when the caller allows SMTPUTF8 (RFC 6531). NUL and other
 * control characters are refused (smuggling and log-injection defence). Pure; never throws.
 */

/** Why a command line could not be decoded. */
export type CommandFault = "empty" | "controlChar" | "nonAscii" | "badUtf8" | "badVerb";

/** A decoded command: `verb` upper-cased, `args` the text after the first space(s). */
export type CommandParse =
  | { readonly ok: true; readonly verb: string; readonly args: string }
  | { readonly ok: false; readonly fault: CommandFault };

/** Options for decoding. */
export interface CommandOptions {
  /** Accept UTF-8 (validated) instead of ASCII only. */
  readonly allowUtf8: boolean;
}

const SP = 0x20;
const DEL = 0x7f;
const MAX_VERB_CHARS = 16;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const VERB_RE = /^[A-Za-z][A-Za-z0-9]*$/;

/** Longest line turned into text by one String.fromCharCode call (its arguments are bytes). */
const MAX_CHAR_CODE_ARGS = 1024;
const CONTROL_CHAR: CommandParse = { ok: false, fault: "controlChar" };

/** Decodes and splits one command line. */
export function parseCommandLine(line: Uint8Array, opts: CommandOptions): CommandParse {
  let hasHighBit = false;
  for (let i = 0; i < line.length; i++) {
    const b = line[i] as number;
    if (b < SP || b === DEL) return CONTROL_CHAR;
    if (b >= 0x80) hasHighBit = true;
  }
  let text: string;
  if (hasHighBit) {
    if (!opts.allowUtf8) return { ok: false, fault: "nonAscii" };
    try {
      text = strictUtf8.decode(line);
    } catch {
      return { ok: false, fault: "badUtf8" };
    }
  } else if (line.length <= MAX_CHAR_CODE_ARGS) {
    // An ASCII line (nearly every one): each byte is its character, turned into one string at
    // once. TextDecoder costs an op call per line, and adding a character at a time made a
    // string per byte (~3 KB of garbage per message at an MX).
    text = String.fromCharCode.apply(null, line as unknown as number[]);
  } else {
    text = strictUtf8.decode(line);
  }
  // RFC 5321 §4.1.1: verb SP argument. Trailing spaces are tolerated (some clients send them).
  // Each regular expression runs only where there is a space to take (most lines have none).
  const trimmed = text.charCodeAt(text.length - 1) === SP ? text.replace(/ +$/, "") : text;
  if (trimmed === "") return { ok: false, fault: "empty" };
  const sp = trimmed.indexOf(" ");
  const verb = sp < 0 ? trimmed : trimmed.slice(0, sp);
  const rest = sp < 0 ? "" : trimmed.slice(sp + 1);
  const args = rest.charCodeAt(0) === SP ? rest.replace(/^ +/, "") : rest;
  if (verb.length > MAX_VERB_CHARS || !VERB_RE.test(verb)) return { ok: false, fault: "badVerb" };
  return { ok: true, verb: verb.toUpperCase(), args };
}
