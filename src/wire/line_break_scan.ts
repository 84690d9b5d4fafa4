/**
 * Finds CR and LF in a body chunk a word at a time: the DATA decoder, the body line check and
 * the dot-stuffer look at every byte of every body, and body lines are long. Pure; never
 * copies the chunk.
 */

const CR = 13;
const LF = 10;

/** Chunks shorter than this are scanned a byte at a time (a word view is not worth making). */
const MIN_WORD_SCAN_BYTES = 256;

/**
 * Finds the next CR or LF in one chunk, four bytes at a time over its 4-byte-aligned middle
 * (a word that may hold CR or LF has a byte below 14, which the classic has-less-than test
 * finds in three operations; such a word is then looked at byte by byte: a TAB costs a little,
 * CR and LF are never missed), a byte at a time at its ends.
 */
export class LineBreakScan {
  readonly #chunk: Uint8Array;
  /** The chunk's aligned middle as 32-bit words; empty for a short chunk. */
  readonly #words: Uint32Array;
  /** Offset in the chunk of the first word. */
  readonly #wordStart: number;

  constructor(chunk: Uint8Array) {
    this.#chunk = chunk;
    const buffer = chunk.buffer;
    if (chunk.length < MIN_WORD_SCAN_BYTES || !(buffer instanceof ArrayBuffer)) {
      this.#words = NO_WORDS;
      this.#wordStart = 0;
      return;
    }
    const skip = (4 - (chunk.byteOffset & 3)) & 3;
    this.#words = new Uint32Array(buffer, chunk.byteOffset + skip, (chunk.length - skip) >> 2);
    this.#wordStart = skip;
  }

  /** Index of the first CR or LF at or after `from`, or the chunk's length. */
  next(from: number): number {
    const chunk = this.#chunk;
    const n = chunk.length;
    const words = this.#words;
    const start = this.#wordStart;
    let i = from;
    // Bytes before the next word boundary (all of them for a short chunk).
    while (i < n && (i < start || ((i - start) & 3) !== 0 || words.length === 0)) {
      const b = chunk[i];
      if (b === CR || b === LF) return i;
      i++;
    }
    let w = (i - start) >> 2;
    while (w < words.length) {
      const x = words[w] ?? 0;
      if ((x - 0x0e0e0e0e) & ~x & 0x80808080) break;
      w++;
    }
    // The word holding the break, or the bytes after the last word.
    for (i = Math.max(i, start + (w << 2)); i < n; i++) {
      const b = chunk[i];
      if (b === CR || b === LF) return i;
    }
    return n;
  }
}

const NO_WORDS = new Uint32Array(0);
