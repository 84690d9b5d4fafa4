/**
 * Incremental dot-stuffing for the DATA phase, client side (RFC 5321 §4.5.2): a `.` is added
 * before every line-start dot, and the body is closed with (CRLF) `.` CRLF. Pure, no I/O.
 * Invariant: never passes a bare CR or bare LF through (SMTP smuggling, docs/protocol.md §6.5):
 * once one is seen the stuffer reports `bareNewline` and emits nothing more.
 */
import { concatBytes } from "./bytes.ts";
import { LineBreakScan } from "./line_break_scan.ts";

const CR = 13;
const LF = 10;
const DOT = 46;

/** Longest wire line held back in `splitLines` mode before it is emitted in pieces. */
export const DEFAULT_MAX_LINE_BYTES = 1000;

/** Why the body cannot be sent. */
export type StuffFault = "bareNewline";

/** Options for a DotStuffer. */
export interface DotStufferOptions {
  /** Emit one Uint8Array per complete line (one TLS record per line for fetchmail). */
  readonly splitLines?: boolean;
  /**
   * In `splitLines` mode, the most bytes one emitted piece may hold; a longer line is emitted
   * in pieces of this size so the held-back tail stays bounded. Default 1000 (RFC 5321 text
   * line including CRLF).
   */
  readonly maxLineBytes?: number;
}

type State = "lineStart" | "inLine" | "sawCr";

const DOT_BYTES = Uint8Array.of(DOT);
const CR_BYTES = Uint8Array.of(CR);
const END_AFTER_CRLF = Uint8Array.of(DOT, CR, LF);
const END_AFTER_LINE = Uint8Array.of(CR, LF, DOT, CR, LF);

/** Stuffs one message body; create a new one for each message. */
export class DotStuffer {
  #state: State = "lineStart";
  #fault: StuffFault | undefined;
  #finished = false;
  readonly #splitLines: boolean;
  readonly #maxLineBytes: number;
  /** splitLines mode: pieces of the current, incomplete line (bounded by maxLineBytes). */
  #tail: Uint8Array[] = [];
  #tailBytes = 0;
  /** Without splitLines: the previous chunk ended in a CR that was not emitted yet. */
  #heldCr = false;

  constructor(opts: DotStufferOptions = {}) {
    this.#splitLines = opts.splitLines ?? false;
    this.#maxLineBytes = Math.max(3, opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  }

  /** The fault found so far; once set, nothing more is emitted. */
  get fault(): StuffFault | undefined {
    return this.#fault;
  }

  /**
   * Stuffs the next body bytes. Without `splitLines` it returns the input itself when no dot
   * needed adding, else a stuffed copy (led by a CR held back from the previous chunk). With `splitLines`, one array per complete line (a line
   * longer than `maxLineBytes` comes in several). Returns `[]` once a fault is found; the
   * caller must then not finish the body.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#finished) throw new Error("DotStuffer.push() after finish()");
    if (this.#fault !== undefined || chunk.length === 0) return [];
    // Offsets (in `chunk`) before which a dot must be inserted, and (splitLines) of each line's
    // end.
    const dots: number[] = [];
    const lineEnds: number[] = [];
    const n = chunk.length;
    const scan = new LineBreakScan(chunk);
    let i = 0;
    while (i < n) {
      switch (this.#state) {
        case "lineStart": {
          if (chunk[i] === DOT) dots.push(i);
          this.#state = "inLine";
          break;
        }
        case "inLine": {
          // On through whole CRLF lines whose successor does not start with "." (most lines
          // of most bodies) without a state change per line.
          let j = scan.next(i);
          while (j + 2 < n && chunk[j] === CR && chunk[j + 1] === LF && chunk[j + 2] !== DOT) {
            if (this.#splitLines) lineEnds.push(j + 2);
            j = scan.next(j + 2);
          }
          i = j;
          if (i >= n) break;
          if (chunk[i] === LF) return this.#setFault();
          i++;
          this.#state = "sawCr";
          break;
        }
        case "sawCr": {
          if (chunk[i] !== LF) return this.#setFault();
          i++;
          if (this.#splitLines) lineEnds.push(i);
          this.#state = "lineStart";
          break;
        }
        default: {
          const never: never = this.#state;
          throw new Error(`unreachable state ${never}`);
        }
      }
    }
    if (this.#splitLines) return this.#emitLines(chunk, dots, lineEnds);
    // A CR at the very end is held back until the next chunk proves it is part of CRLF.
    const heldCr = this.#heldCr;
    this.#heldCr = this.#state === "sawCr";
    const body = this.#heldCr ? chunk.subarray(0, chunk.length - 1) : chunk;
    const out = emitStuffed(body, dots);
    return heldCr ? [concatBytes([CR_BYTES, ...out])] : out;
  }

  /**
   * Ends the body: the held-back tail (splitLines mode), CRLF if the body did not end with
   * one, and `.` CRLF. Returns `[]` when the body ended in a bare CR (then `fault` is set).
   */
  finish(): Uint8Array[] {
    if (this.#finished) throw new Error("DotStuffer.finish() called twice");
    this.#finished = true;
    if (this.#fault !== undefined) return [];
    if (this.#state === "sawCr") {
      this.#fault = "bareNewline";
      return [];
    }
    const endsLine = this.#state === "lineStart";
    if (!this.#splitLines) return [(endsLine ? END_AFTER_CRLF : END_AFTER_LINE).slice()];
    if (endsLine) return [END_AFTER_CRLF.slice()];
    this.#tail.push(Uint8Array.of(CR, LF));
    this.#tailBytes += 2;
    return [this.#takeTail(), END_AFTER_CRLF.slice()];
  }

  #setFault(): Uint8Array[] {
    this.#fault = "bareNewline";
    this.#tail = [];
    this.#tailBytes = 0;
    return [];
  }

  #emitLines(chunk: Uint8Array, dots: number[], lineEnds: number[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    let start = 0;
    let d = 0;
    // Each range passed here lies within one line, so its only possible dot is at its start.
    const appendUpTo = (end: number) => {
      if (start >= end) return;
      if (dots[d] === start) {
        this.#appendTail(DOT_BYTES, out);
        d++;
      }
      this.#appendTail(chunk.subarray(start, end), out);
      start = end;
    };
    for (const end of lineEnds) {
      appendUpTo(end);
      if (this.#tailBytes > 0) out.push(this.#takeTail());
    }
    appendUpTo(chunk.length);
    return out;
  }

  /** Adds bytes to the current line, emitting full pieces when it grows past the cap. */
  #appendTail(bytes: Uint8Array, out: Uint8Array[]): void {
    let rest = bytes;
    while (rest.length > 0) {
      const room = this.#maxLineBytes - this.#tailBytes;
      const take = Math.min(room, rest.length);
      // Copy: the caller may reuse its chunk after push() returns.
      this.#tail.push(rest.slice(0, take));
      this.#tailBytes += take;
      rest = rest.subarray(take);
      if (this.#tailBytes >= this.#maxLineBytes) {
        const piece = this.#takeTail();
        if (piece[piece.length - 1] === CR) {
          // Never emit a CR whose LF has not been seen yet (it might turn out bare).
          out.push(piece.subarray(0, piece.length - 1));
          this.#tail.push(CR_BYTES.slice());
          this.#tailBytes = 1;
        } else {
          out.push(piece);
        }
      }
    }
  }

  #takeTail(): Uint8Array {
    const line = concatBytes(this.#tail);
    this.#tail = [];
    this.#tailBytes = 0;
    return line;
  }
}

/** The chunk with a dot inserted before each offset in `dots` (the chunk itself if none). */
function emitStuffed(chunk: Uint8Array, dots: number[]): Uint8Array[] {
  if (chunk.length === 0) return [];
  if (dots.length === 0) return [chunk];
  const out = new Uint8Array(chunk.length + dots.length);
  let from = 0;
  let to = 0;
  for (const dot of dots) {
    out.set(chunk.subarray(from, dot), to);
    to += dot - from;
    out[to++] = DOT;
    from = dot;
  }
  out.set(chunk.subarray(from), to);
  return [out];
}
