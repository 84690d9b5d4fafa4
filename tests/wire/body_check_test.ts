/**
 * BodyLineCheck: the one line check for DATA and BDAT bodies (#10). Table rows for each rule
 * at N and N+1, and properties: the answer does not depend on chunking, and DATA (decoded
 * from the dot-stuffed wire form) and BDAT (the raw body) always agree.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import fc from "fast-check";
import { BodyLineCheck } from "../../src/wire/body_check.ts";
import type { BodyLineFault } from "../../src/wire/body_check.ts";
import { DataDecoder } from "../../src/wire/data_decoder.ts";
import { runs, splitAt } from "../fuzz/_runs.ts";
import { concatBytes } from "../../src/wire/bytes.ts";
import { byteByByte, cutViews, longBody } from "../_helpers/long_bodies.ts";

const enc = new TextEncoder();

function check(chunks: readonly Uint8Array[], maxLineBytes: number): BodyLineFault | undefined {
  const c = new BodyLineCheck(maxLineBytes);
  for (const chunk of chunks) c.push(chunk);
  c.end();
  return c.fault;
}

/** Whole, byte by byte, and split at every offset: one answer or a thrown mismatch. */
function checkEveryWay(body: Uint8Array, maxLineBytes: number): BodyLineFault | undefined {
  const whole = check([body], maxLineBytes);
  assertEquals(check([...body].map((b) => Uint8Array.of(b)), maxLineBytes), whole);
  for (let at = 0; at <= body.length; at++) {
    assertEquals(check([body.subarray(0, at), body.subarray(at)], maxLineBytes), whole, `at ${at}`);
  }
  return whole;
}

Deno.test("BodyLineCheck: each rule at N and N+1", async (t) => {
  const rows: { name: string; body: string; max: number; want: BodyLineFault | undefined }[] = [
    { name: "empty body", body: "", max: 10, want: undefined },
    { name: "CRLF lines", body: "a\r\nb\r\n", max: 10, want: undefined },
    { name: "last line without CRLF (BDAT may end so)", body: "a\r\nb", max: 10, want: undefined },
    { name: "bare LF", body: "a\nb\r\n", max: 10, want: "bareNewline" },
    { name: "bare CR", body: "a\rb\r\n", max: 10, want: "bareNewline" },
    { name: "CR at the very end", body: "a\r", max: 10, want: "bareNewline" },
    { name: "CR CR LF", body: "a\r\r\n", max: 10, want: "bareNewline" },
    { name: "LF first", body: "\n", max: 10, want: "bareNewline" },
    { name: "line of N octets with CRLF", body: "12345678\r\n", max: 10, want: undefined },
    { name: "line of N+1 octets", body: "123456789\r\n", max: 10, want: "lineTooLong" },
    { name: "unterminated line of N", body: "1234567890", max: 10, want: undefined },
    { name: "unterminated line of N+1", body: "12345678901", max: 10, want: "lineTooLong" },
    // The stuffed dot a sender adds in DATA counts (RFC 5321 §4.5.2).
    { name: "dot line, N on the wire", body: ".234567\r\n", max: 10, want: undefined },
    { name: "dot line, N+1 on the wire", body: ".2345678\r\n", max: 10, want: "lineTooLong" },
    { name: "bare newline wins over length", body: "123456789012\n", max: 10, want: "bareNewline" },
    {
      name: "8-bit and NUL are not line faults",
      body: "\x00\xff\x80\r\n",
      max: 10,
      want: undefined,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const body = Uint8Array.from(row.body, (c) => c.charCodeAt(0));
      assertEquals(checkEveryWay(body, row.max), row.want);
    });
  }
});

const framingByte = fc.oneof(
  fc.constantFrom(13, 10, 46, 0, 0xff, 0x61),
  fc.integer({ min: 0, max: 255 }),
);
const body = fc.array(framingByte, { maxLength: 300 }).map((a) => Uint8Array.from(a));

Deno.test("BodyLineCheck: any split gives the same answer (property)", () => {
  fc.assert(
    fc.property(
      body,
      fc.array(fc.nat(), { maxLength: 10 }),
      fc.integer({ min: 2, max: 40 }),
      (b, cuts, max) => {
        assertEquals(check(splitAt(b, cuts), max), check([b], max));
      },
    ),
    { numRuns: runs(2000) },
  );
});

/**
 * The body as DATA carries it: a dot added before each dot that starts a line (after CRLF:
 * bare newlines are kept, as a careless sender would send them), then "." CRLF.
 */
function asData(b: Uint8Array): Uint8Array {
  const out: number[] = [];
  let lineStart = true;
  let prev = -1;
  for (const x of b) {
    if (lineStart && x === 46) out.push(46);
    out.push(x);
    lineStart = x === 10 && prev === 13;
    prev = x;
  }
  return Uint8Array.from([...out, 46, 13, 10]);
}

Deno.test("DATA and BDAT refuse the same bodies with the same fault (property, #10)", () => {
  fc.assert(
    fc.property(body, fc.integer({ min: 3, max: 40 }), (b, max) => {
      // Bodies that end in CRLF travel unchanged in both (DATA appends one otherwise).
      const whole = b.length === 0 || (b[b.length - 1] === 10 && b[b.length - 2] === 13)
        ? b
        : concatBytes([b, enc.encode("\r\n")]);
      const decoder = new DataDecoder({ maxMessageBytes: 1 << 20, maxLineBytes: max });
      const pushed = decoder.push(asData(whole));
      if (pushed.endOffset < 0) return; // a bare-newline body can hide the end from DATA
      assertEquals(decoder.fault, check([whole], max));
    }),
    { numRuns: runs(3000) },
  );
});

/** The longest line as DATA measures it (CRLF and a line-start dot's twin counted). */
function longestLine(b: Uint8Array): number {
  let longest = 0;
  let start = 0;
  for (let i = 0; i <= b.length; i++) {
    const ends = i === b.length || (b[i] === 13 && b[i + 1] === 10);
    if (!ends) continue;
    const octets = i - start + (i < b.length ? 2 : 0) + (b[start] === 46 && i > start ? 1 : 0);
    longest = Math.max(longest, octets);
    start = i + 2;
    i++;
  }
  return longest;
}

Deno.test("BodyLineCheck: long chunks (scanned a word at a time) at any alignment and cut anywhere answer as byte-by-byte feeding (property, #13)", () => {
  fc.assert(
    fc.property(longBody, fc.array(fc.nat(), { maxLength: 6 }), (b, cuts) => {
      // The limit at the longest line, one less and one more: N and N+1 for every body.
      const longest = longestLine(b);
      for (const max of [longest - 1, longest, longest + 1]) {
        const want = check(byteByByte(b), max);
        assertEquals(check([b], max), want);
        assertEquals(check(cutViews(b, cuts), max), want);
      }
    }),
    { numRuns: runs(300) },
  );
});
