/**
 * Splits a message (CRLF lines, as SMTP delivers it) into its header fields and its body,
 * chunk by chunk: the header section is held (up to a limit), the body is passed through.
 * Pure. RFC 5322 §2.1: the header section ends at the first empty line; without one, the
 * whole message is header and the body is empty.
 */
import type { HeaderField } from "./canon.ts";
import { concatBytes } from "../wire/bytes.ts";

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

/** Outcome of feeding a chunk: the part of it that belongs to the body (maybe empty). */
export type SplitResult =
  | { readonly ok: true; readonly body: Uint8Array }
  | { readonly ok: false; readonly reason: "header_too_large" };

/** Incremental header/body splitter. */
export class HeaderSplitter {
  readonly #maxHeaderBytes: number;
  readonly #parts: Uint8Array[] = [];
  #headerBytes = 0;
  #isAtLineStart = true;
  #prev = -1;
  /** A CR at the start of a line: the empty line, if LF follows. */
  #hasLineStartCr = false;
  #isDone = false;
  #fields: HeaderField[] | undefined;

  constructor(maxHeaderBytes: number) {
    this.#maxHeaderBytes = maxHeaderBytes;
  }

  /** Whether the empty line after the header section was seen. */
  get isHeaderComplete(): boolean {
    return this.#isDone;
  }

  /** Feeds message bytes; returns the body bytes in this chunk (a view, not a copy). */
  push(chunk: Uint8Array): SplitResult {
    if (this.#isDone) return { ok: true, body: chunk };
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i] as number;
      if (this.#hasLineStartCr) {
        this.#hasLineStartCr = false;
        if (b === LF) {
          // The empty line: the header section is everything before its CR.
          if (!this.#keep(chunk.subarray(0, Math.max(0, i - 1)))) return tooLarge();
          this.#isDone = true;
          return { ok: true, body: chunk.subarray(i + 1) };
        }
        // A CR held from the previous chunk was header content after all.
        if (i === 0 && !this.#keep(Uint8Array.of(CR))) return tooLarge();
      }
      if (this.#isAtLineStart && b === CR) {
        this.#hasLineStartCr = true;
        this.#isAtLineStart = false;
        this.#prev = b;
        continue;
      }
      this.#isAtLineStart = b === LF && this.#prev === CR;
      this.#prev = b;
    }
    // A CR at the start of a line ending the chunk is held until the next byte decides.
    const keepTo = this.#hasLineStartCr ? chunk.length - 1 : chunk.length;
    if (!this.#keep(chunk.subarray(0, keepTo))) return tooLarge();
    return { ok: true, body: new Uint8Array(0) };
  }

  /** Ends the message: a message without an empty line is all header, with an empty body. */
  end(): SplitResult {
    if (!this.#isDone && this.#hasLineStartCr) {
      this.#hasLineStartCr = false;
      if (!this.#keep(Uint8Array.of(CR))) return tooLarge();
    }
    this.#isDone = true;
    return { ok: true, body: new Uint8Array(0) };
  }

  /** The header fields in message order (call after the header section is complete). */
  fields(): readonly HeaderField[] {
    this.#fields ??= parseFields(concatBytes(this.#parts));
    return this.#fields;
  }

  #keep(part: Uint8Array): boolean {
    if (part.length === 0) return true;
    this.#headerBytes += part.length;
    if (this.#headerBytes > this.#maxHeaderBytes) return false;
    this.#parts.push(part.slice());
    return true;
  }
}

function tooLarge(): SplitResult {
  return { ok: false, reason: "header_too_large" };
}

/**
 * The fields of a header section: a line starting with WSP continues the field above it.
 * A line without a colon is kept as a field with an empty name (never selected for signing).
 */
export function parseFields(section: Uint8Array): HeaderField[] {
  const fields: HeaderField[] = [];
  const decoder = new TextDecoder("latin1");
  let start = 0;
  let i = 0;
  while (i < section.length) {
    let lineEnd = section.indexOf(LF, i);
    lineEnd = lineEnd < 0 ? section.length : lineEnd + 1;
    const next = section[lineEnd];
    if (lineEnd < section.length && (next === SP || next === HTAB)) {
      i = lineEnd;
      continue;
    }
    const raw = section.subarray(start, lineEnd);
    const colon = raw.indexOf(COLON);
    const name = colon < 0 ? "" : decoder.decode(raw.subarray(0, colon)).replace(/[ \t]+$/, "");
    fields.push({ name, raw });
    start = lineEnd;
    i = lineEnd;
  }
  return fields;
}
