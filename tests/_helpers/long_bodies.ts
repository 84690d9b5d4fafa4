/**
 * Bodies for the word-at-a-time scans (src/wire/line_break_scan.ts): long runs of text with
 * CRLF line ends, line-start dots, and now and then a byte at the edges of the word test (CR,
 * LF, bytes one bit or one unit away, TAB, NUL, 8-bit), placed at any alignment in their
 * buffer and cut anywhere, so that a break is met at every offset of a word and at chunk ends.
 */
import fc from "fast-check";

const piece = fc.oneof(
  { weight: 20, arbitrary: fc.constant([0x41]) },
  { weight: 3, arbitrary: fc.constant([13, 10]) },
  { weight: 1, arbitrary: fc.constant([13, 10, 46]) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(13, 10, 46, 0xff, 0x8d, 0x8a, 0x8e, 0x0c, 0x0e, 0x09, 0x0b, 0)
      .map((b) => [b]),
  },
);

/** A body of `minBytes`.. bytes, as a view `offset` bytes into a larger buffer. */
export const longBody = fc.tuple(
  fc.array(piece, { minLength: 200, maxLength: 900 }),
  fc.integer({ min: 0, max: 7 }),
).map(([pieces, offset]) => {
  const bytes = pieces.flat();
  const buffer = new Uint8Array(offset + bytes.length + 3);
  buffer.set(bytes, offset);
  return buffer.subarray(offset, offset + bytes.length);
});

/** Cuts `body` into views (not copies: each keeps its alignment) at the given points. */
export function cutViews(body: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of [...points, body.length]) {
    if (p > from) out.push(body.subarray(from, p));
    from = Math.max(from, p);
  }
  return out;
}

/** The same bytes one byte a chunk: every scan then goes a byte at a time. */
export function byteByByte(body: Uint8Array): Uint8Array[] {
  return Array.from(body, (b) => Uint8Array.of(b));
}
