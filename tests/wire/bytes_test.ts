/** The op-free text helpers of wire/bytes.ts give what TextEncoder/TextDecoder give (#13). */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import fc from "fast-check";
import { decodeLine, encodeLineGroup, encodeText, putAsciiLines } from "../../src/wire/bytes.ts";
import { runs } from "../fuzz/_runs.ts";

Deno.test("decodeLine() gives what TextDecoder gives, ASCII or not (property, #13)", () => {
  const byte = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
  );
  const decoder = new TextDecoder();
  fc.assert(
    fc.property(fc.array(byte, { maxLength: 512 }), (a) => {
      const line = Uint8Array.from(a);
      assertEquals(decodeLine(line), decoder.decode(line));
    }),
    { numRuns: runs(2000) },
  );
});

const line = fc.array(
  fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom("M", "a", "<", ":", "@", " ", "=", "\x7f", "\0") },
    { weight: 1, arbitrary: fc.constantFrom("é", "€", "😀", "\u0080", "\ud800") },
  ),
  { maxLength: 40 },
).map((a) => a.join(""));

Deno.test("encodeLineGroup() gives the lines as TextEncoder writes them, each with CRLF (property, #13)", () => {
  const encoder = new TextEncoder();
  fc.assert(
    fc.property(fc.array(line, { maxLength: 4 }), (lines) => {
      const want = encoder.encode(lines.map((l) => `${l}\r\n`).join(""));
      assertEquals(encodeLineGroup(lines), want);
    }),
    { numRuns: runs(2000) },
  );
});

Deno.test("encodeText() gives what TextEncoder gives (property, #13)", () => {
  const encoder = new TextEncoder();
  fc.assert(
    fc.property(line, (text) => assertEquals(encodeText(text), encoder.encode(text))),
    { numRuns: runs(2000) },
  );
});

Deno.test("putAsciiLines() writes ASCII lines that fit, and refuses the rest (N and N+1 octets of room)", () => {
  const lines = ["MAIL FROM:<a@b.test>", "DATA"];
  const size = lines[0]!.length + lines[1]!.length + 4;
  const want = new TextEncoder().encode("MAIL FROM:<a@b.test>\r\nDATA\r\n");
  const exact = new Uint8Array(3 + size);
  assertEquals(putAsciiLines(lines, exact, 3), 3 + size);
  assertEquals(exact.subarray(3), want);
  assertEquals(putAsciiLines(lines, new Uint8Array(2 + size), 3), -1);
  assertEquals(putAsciiLines(["RCPT TO:<é@b.test>"], new Uint8Array(100), 0), -1);
});
