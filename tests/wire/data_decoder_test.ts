import { deepStrictEqual as assertEquals } from "node:assert/strict";
import fc from "fast-check";
import { DataDecoder } from "../../src/wire/data_decoder.ts";
import { BodyLineCheck } from "../../src/wire/body_check.ts";
import type { DataFault, DataLimits } from "../../src/wire/data_decoder.ts";
import { SMUGGLED_ENDS } from "../_helpers/smuggled_ends.ts";

const encoder = new TextEncoder();
const LIMITS: DataLimits = { maxMessageBytes: 10_000, maxLineBytes: 1000 };

interface Decoded {
  body: Uint8Array;
  /** Offset just past the end marker in the whole input, or -1. */
  end: number;
  fault: DataFault | undefined;
}

/** Feeds `input` in the given pieces and collects the body. */
function decode(input: Uint8Array, cuts: number[], limits = LIMITS): Decoded {
  const d = new DataDecoder(limits);
  const parts: number[] = [];
  let start = 0;
  let end = -1;
  for (const cut of [...cuts, input.length]) {
    if (cut < start) continue;
    const chunk = input.subarray(start, cut);
    const r = d.push(chunk);
    for (const s of r.segments) parts.push(...s);
    if (r.endOffset >= 0) {
      end = start + r.endOffset;
      break;
    }
    start = cut;
  }
  return { body: Uint8Array.from(parts), end, fault: d.fault };
}

function bytes(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Whole, one byte at a time, and split at every offset: always the same result. */
function decodeEveryWay(input: Uint8Array, limits = LIMITS): Decoded {
  const whole = decode(input, [], limits);
  const single = decode(input, Array.from({ length: input.length }, (_, i) => i + 1), limits);
  assertEquals(single, whole);
  for (let i = 0; i <= input.length; i++) assertEquals(decode(input, [i], limits), whole);
  return whole;
}

Deno.test("DataDecoder finds CRLF.CRLF however the input is split", async (t) => {
  const rows = [
    { input: "\r\n.\r\n", body: "\r\n", why: "one empty line" },
    { input: ".\r\n", body: "", why: "empty body right after the 354" },
    { input: "a\r\nb\r\n.\r\n", body: "a\r\nb\r\n", why: "plain lines" },
    { input: "..x\r\n.\r\n", body: ".x\r\n", why: "one stuffed dot removed" },
    { input: "...\r\n..\r\n.\r\n", body: "..\r\n.\r\n", why: "exactly one dot removed" },
    { input: "a.\r\n.b\r\n.\r\n", body: "a.\r\nb\r\n", why: "only a leading dot" },
    { input: "x\r\n.\r\nMAIL FROM:<a@b>\r\n", body: "x\r\n", why: "bytes after the end stay" },
  ];
  for (const row of rows) {
    await t.step(row.why, () => {
      const input = bytes(row.input);
      const got = decodeEveryWay(input);
      assertEquals(got.body, bytes(row.body));
      assertEquals(got.fault, undefined);
      // The end is just past the first legal CRLF.CRLF (or ".CRLF" at the very start).
      const end = row.input.startsWith(".\r\n") ? 3 : row.input.indexOf("\r\n.\r\n") + 5;
      assertEquals(got.end, end);
    });
  }
});

Deno.test("DataDecoder keeps 8-bit and NUL bytes as they are", () => {
  const input = Uint8Array.of(0xff, 0x00, 0x80, 0xc3, 0xa9, 13, 10, 46, 13, 10);
  const got = decodeEveryWay(input);
  assertEquals(got.body, Uint8Array.of(0xff, 0x00, 0x80, 0xc3, 0xa9, 13, 10));
  assertEquals(got.fault, undefined);
});

Deno.test("DataDecoder never ends at a smuggled end-of-data and flags it", async (t) => {
  const variants = [...SMUGGLED_ENDS, "\r\n\x00.\r\n"];
  for (const v of variants) {
    await t.step(JSON.stringify(v), () => {
      const tail = "MAIL FROM:<x@y>\r\n";
      const input = bytes(`a${v}${tail}\r\n.\r\n`);
      const got = decodeEveryWay(input);
      assertEquals(got.end, input.length, "only the real CRLF.CRLF ends the body");
      if (v.includes("\x00")) assertEquals(got.fault, undefined);
      else assertEquals(got.fault, "bareNewline");
    });
  }
});

Deno.test("DataDecoder limits a line to maxLineBytes with CRLF: N and N+1", () => {
  const limits = { maxMessageBytes: 10_000, maxLineBytes: 10 };
  assertEquals(decodeEveryWay(bytes("12345678\r\n.\r\n"), limits).fault, undefined);
  assertEquals(decodeEveryWay(bytes("123456789\r\n.\r\n"), limits).fault, "lineTooLong");
  // A stuffed dot counts on the wire.
  assertEquals(decodeEveryWay(bytes("..234567\r\n.\r\n"), limits).fault, undefined);
  assertEquals(decodeEveryWay(bytes("..2345678\r\n.\r\n"), limits).fault, "lineTooLong");
  // Lines followed by more lines (taken whole, one after the other, when the input is not cut).
  assertEquals(decodeEveryWay(bytes("a\r\n12345678\r\nb\r\n.\r\n"), limits).fault, undefined);
  assertEquals(decodeEveryWay(bytes("a\r\n123456789\r\nb\r\n.\r\n"), limits).fault, "lineTooLong");
});

Deno.test("DataDecoder limits the body size: N and N+1, and reads on to the end", () => {
  const limits = { maxMessageBytes: 10, maxLineBytes: 1000 };
  const atN = decodeEveryWay(bytes("12345678\r\n.\r\n"), limits);
  assertEquals([atN.fault, atN.body.length], [undefined, 10]);
  const over = bytes("123456789\r\nmore\r\n.\r\n");
  const atN1 = decodeEveryWay(over, limits);
  assertEquals([atN1.fault, atN1.end, atN1.body.length], ["tooBig", over.length, 10]);
});

Deno.test("DataDecoder: any split gives the same result (property)", () => {
  const alphabet = fc.constantFrom(13, 10, 46, 65, 0xff);
  fc.assert(
    fc.property(fc.array(alphabet, { maxLength: 40 }), fc.array(fc.nat(45)), (arr, cuts) => {
      const input = Uint8Array.from([...arr, 13, 10, 46, 13, 10]);
      const sorted = [...cuts].sort((a, b) => a - b);
      assertEquals(decode(input, sorted), decode(input, []));
    }),
  );
});

Deno.test("DataDecoder: its one scan judges the lines as BodyLineCheck.push() over its output (#13)", () => {
  // The decoder tells the line check what it finds while looking for the end, instead of the
  // check scanning the unstuffed body again; both ways must agree on every input.
  const alphabet = fc.constantFrom(13, 10, 46, 65, 0xff);
  fc.assert(
    fc.property(
      fc.array(alphabet, { maxLength: 60 }),
      fc.array(fc.nat(65)),
      fc.integer({ min: 1, max: 12 }),
      (arr, cuts, maxLineBytes) => {
        const input = Uint8Array.from([...arr, 13, 10, 46, 13, 10]);
        const limits = { maxMessageBytes: 10_000, maxLineBytes };
        const got = decode(input, [...cuts].sort((a, b) => a - b), limits);
        const check = new BodyLineCheck(maxLineBytes);
        check.push(got.body);
        check.end();
        assertEquals(got.fault, check.fault, `input ${JSON.stringify(arr)}`);
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("DataDecoder: long chunks (scanned a word at a time) at any alignment decode as short ones (property, #13)", () => {
  // Chunks of 256 bytes and more are scanned four bytes at a time over their aligned middle
  // (a word with a byte below 14 is looked at byte by byte), and whole CRLF lines are taken in
  // one step; a chunk cut short is scanned a byte at a time. Every break at every offset must
  // be found, and the lines judged as BodyLineCheck.push() judges the decoded body.
  const alphabet = fc.oneof(
    { weight: 12, arbitrary: fc.constant(65) },
    // Besides CR, LF and ".", bytes one bit or one unit away from them (the word test's edges).
    {
      weight: 1,
      arbitrary: fc.constantFrom(13, 10, 46, 0xff, 0x8d, 0x8a, 0x8e, 0x0c, 0x0e, 0x09, 0x0b, 0),
    },
  );
  fc.assert(
    fc.property(
      fc.array(alphabet, { minLength: 256, maxLength: 1200 }),
      fc.integer({ min: 0, max: 7 }),
      fc.integer({ min: 4, max: 40 }),
      (arr, offset, maxLineBytes) => {
        const body = [...arr, 13, 10, 46, 13, 10];
        // The input at `offset` bytes into its buffer, so each alignment is met.
        const padded = new Uint8Array(offset + body.length + 3);
        padded.set(body, offset);
        const input = padded.subarray(offset, offset + body.length);
        const limits = { maxMessageBytes: 100_000, maxLineBytes };
        const short = Array.from({ length: Math.ceil(body.length / 100) }, (_, k) => k * 100);
        const long = decode(input, [], limits);
        assertEquals(long, decode(input, short.slice(1), limits));
        const check = new BodyLineCheck(maxLineBytes);
        check.push(long.body);
        check.end();
        assertEquals(long.fault, check.fault);
      },
    ),
    { numRuns: 500 },
  );
});
