/**
 * The one body check for every way a body arrives (DATA after unstuffing, BDAT chunks as
 * they are): every line ends in CRLF — a bare CR or bare LF is refused (SMTP smuggling,
 * RFC 5321 §2.3.8) — and no line is longer than the limit. Pure and incremental: a CR split
 * from its LF across chunks is held, so the answer never depends on how TCP cut the bytes.
 *
 * A line is measured as it travels in DATA: CRLF included and a line-initial "." counted
 * twice, since a sender dot-stuffs it (RFC 5321 §4.5.2). So a body accepted here, by DATA or
 * by BDAT, can be relayed with DATA to a peer that measures the same way (our own customer
 * side does). Content is never decoded; 8-bit bytes are not this check's business.
 */

import { LineBreakScan } from "./line_break_scan.ts";

const CR = 13;
const LF = 10;
const DOT = 46;

/** Why a body's lines were refused, worst first. */
export type BodyLineFault = "bareNewline" | "lineTooLong";

/** Checks the lines of one body; create a new one for each message. */
export class BodyLineCheck {
  readonly #maxLineBytes: number;
  /** Octets of the current line so far (as on the wire in DATA). */
  #lineBytes = 0;
  /** The previous chunk ended in CR. */
  #pendingCr = false;
  #bareNewline = false;
  #tooLong = false;

  /** `maxLineBytes`: longest line including CRLF (RFC 5321 §4.5.3.1.6: 1000). */
  constructor(maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes;
  }

  /** The worst fault seen so far, if any. */
  get fault(): BodyLineFault | undefined {
    if (this.#bareNewline) return "bareNewline";
    if (this.#tooLong) return "lineTooLong";
    return undefined;
  }

  /** Feeds the next body bytes (unstuffed). */
  push(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    if (this.#pendingCr && n > 0) {
      this.#pendingCr = false;
      if (chunk[0] === LF) {
        this.#endLine(1);
        i = 1;
      } else {
        this.#bareNewline = true;
      }
    }
    const scan = new LineBreakScan(chunk);
    while (i < n) {
      if (this.#lineBytes === 0 && chunk[i] === DOT) this.#count(1); // its stuffed twin
      // Fast path: the next CR or LF in this chunk, a word at a time, and on through whole
      // CRLF lines whose successor does not start with "." (most lines of most bodies).
      let j = scan.next(i);
      while (j + 2 < n && chunk[j] === CR && chunk[j + 1] === LF && chunk[j + 2] !== DOT) {
        this.addLine(j + 2 - i);
        i = j + 2;
        j = scan.next(i);
      }
      this.#count(j - i);
      if (j >= n) return;
      if (chunk[j] === LF) {
        this.#bareNewline = true;
        this.#count(1);
        i = j + 1;
        continue;
      }
      // CR: a line end only when LF follows, maybe in the next chunk.
      this.#count(1);
      if (j + 1 >= n) {
        this.#pendingCr = true;
        return;
      }
      if (chunk[j + 1] === LF) {
        this.#endLine(1);
        i = j + 2;
      } else {
        this.#bareNewline = true;
        i = j + 1;
      }
    }
  }

  /** The body is complete: a CR still waiting for its LF is a bare CR. */
  end(): void {
    if (this.#pendingCr) this.#bareNewline = true;
    this.#pendingCr = false;
  }

  // The same check fed by a caller that finds the line ends itself (the DATA decoder, which
  // scans every byte for its end marker anyway: one scan of the body, not two). Never mixed
  // with push() on one body.

  /** `octets` more of the current line, none of them CR or LF. */
  addOctets(octets: number): void {
    this.#count(octets);
  }

  /** The current line ends with CRLF (its two octets count). */
  endLine(): void {
    this.#endLine(2);
  }

  /** The current line ends after `octets` more, its CRLF included (no other CR or LF). */
  addLine(octets: number): void {
    if (this.#lineBytes + octets > this.#maxLineBytes) this.#tooLong = true;
    this.#lineBytes = 0;
  }

  /** A CR or LF outside a CRLF. */
  markBareNewline(): void {
    this.#bareNewline = true;
  }

  #count(bytes: number): void {
    this.#lineBytes += bytes;
    if (this.#lineBytes > this.#maxLineBytes) this.#tooLong = true;
  }

  #endLine(lfBytes: number): void {
    this.#count(lfBytes);
    this.#lineBytes = 0;
  }
}
