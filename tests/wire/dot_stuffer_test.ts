import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { DotStuffer } from "../../src/wire/dot_stuffer.ts";
import { DataDecoder } from "../../src/wire/data_decoder.ts";
import { concatBytes } from "../../src/wire/bytes.ts";
import fc from "fast-check";
import { byteByByte, cutViews, longBody } from "../_helpers/long_bodies.ts";
import { runs } from "../fuzz/_runs.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Runs the stuffer over `chunks`; returns every emitted piece and the fault. */
function stuff(chunks: readonly Uint8Array[], splitLines = false, maxLineBytes?: number) {
  const s = new DotStuffer({ splitLines, ...(maxLineBytes ? { maxLineBytes } : {}) });
  const pieces: Uint8Array[] = [];
  for (const c of chunks) pieces.push(...s.push(c));
  pieces.push(...s.finish());
  return { pieces, wire: concatBytes(pieces), fault: s.fault };
}

/** Splits `bytes` in every way the style guide asks for: whole, byte by byte, at each offset. */
function splittings(bytes: Uint8Array): Uint8Array[][] {
  const empty = new Uint8Array(0);
  const out: Uint8Array[][] = [
    [bytes],
    Array.from(bytes, (b) => Uint8Array.of(b)),
    // Empty chunks between every byte must change nothing.
    Array.from(bytes, (b) => [Uint8Array.of(b), empty]).flat(),
  ];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

const CASES: { name: string; body: string; wire: string }[] = [
  { name: "empty body is just the end marker", body: "", wire: ".\r\n" },
  { name: "plain lines pass unchanged", body: "a\r\nb\r\n", wire: "a\r\nb\r\n.\r\n" },
  { name: "missing final CRLF is added", body: "a\r\nb", wire: "a\r\nb\r\n.\r\n" },
  { name: "leading dot is doubled", body: ".a\r\n", wire: "..a\r\n.\r\n" },
  { name: "a lone dot line is doubled", body: "a\r\n.\r\nb\r\n", wire: "a\r\n..\r\nb\r\n.\r\n" },
  { name: "dots inside a line are left alone", body: "a.b.\r\n", wire: "a.b.\r\n.\r\n" },
  { name: "dot on a last line without CRLF", body: "x\r\n.", wire: "x\r\n..\r\n.\r\n" },
  { name: "two dots become three", body: "..\r\n", wire: "...\r\n.\r\n" },
  { name: "empty lines stay", body: "\r\n\r\n", wire: "\r\n\r\n.\r\n" },
];

Deno.test("DotStuffer stuffs line-start dots and ends the body, however the input is split", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, () => {
      for (const splitLines of [false, true]) {
        for (const chunks of splittings(enc.encode(c.body))) {
          const got = stuff(chunks, splitLines);
          assertEquals(got.fault, undefined);
          assertEquals(dec.decode(got.wire), c.wire);
        }
      }
    });
  }
});

Deno.test("DotStuffer output decodes back to the same bytes (8-bit included)", () => {
  const body = new Uint8Array([0x2e, 0xff, 0x80, 13, 10, 0x2e, 13, 10, 0x00, 0xe9, 13, 10, 0x2e]);
  for (const chunks of splittings(body)) {
    const { wire } = stuff(chunks);
    const decoder = new DataDecoder({ maxMessageBytes: 1 << 20, maxLineBytes: 1000 });
    const { segments, endOffset } = decoder.push(wire);
    assertEquals(endOffset, wire.length);
    assertEquals(decoder.fault, undefined);
    // The receiver sees the body plus the CRLF that had to be added before the end marker.
    assertEquals(concatBytes(segments), concatBytes([body, Uint8Array.of(13, 10)]));
  }
});

Deno.test("DotStuffer reports a bare CR or LF and emits nothing after it", async (t) => {
  const rows = [
    { name: "bare LF", body: "a\nb\r\n" },
    { name: "bare CR", body: "a\rb\r\n" },
    { name: "LF at line start", body: "a\r\n\n" },
    { name: "CR then dot", body: "a\r.\r\n" },
    { name: "body ending in a bare CR", body: "a\r\nb\r" },
    { name: "smuggling sequence LF.CRLF", body: "a\n.\r\nMAIL FROM:<x>\r\n" },
    { name: "smuggling sequence CRLF.LF", body: "a\r\n.\nMAIL FROM:<x>\r\n" },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      for (const splitLines of [false, true]) {
        for (const chunks of splittings(enc.encode(row.body))) {
          const s = new DotStuffer({ splitLines });
          const pieces: Uint8Array[] = [];
          for (const c of chunks) pieces.push(...s.push(c));
          pieces.push(...s.finish());
          assertEquals(s.fault, "bareNewline");
          const wire = concatBytes(pieces);
          // Nothing emitted may hold a CR or LF that is not part of CRLF.
          for (let i = 0; i < wire.length; i++) {
            if (wire[i] === 13) assertEquals(wire[i + 1], 10, `bare CR at ${i}`);
            if (wire[i] === 10) assertEquals(wire[i - 1], 13, `bare LF at ${i}`);
          }
          // And never the end marker.
          assert(!dec.decode(wire).endsWith("\r\n.\r\n"));
        }
      }
    });
  }
});

Deno.test("DotStuffer splitLines gives one piece per line across chunk boundaries", () => {
  const body = enc.encode("one\r\n.two\r\nthree\r\nfour");
  for (const chunks of splittings(body)) {
    const { pieces } = stuff(chunks, true);
    assertEquals(pieces.map((p) => dec.decode(p)), [
      "one\r\n",
      "..two\r\n",
      "three\r\n",
      "four\r\n",
      ".\r\n",
    ]);
  }
});

Deno.test("DotStuffer splitLines emits an over-long line in capped pieces", () => {
  const line = "x".repeat(25) + "\r\n";
  const { pieces, wire } = stuff([enc.encode(line + "y\r\n")], true, 10);
  assertEquals(dec.decode(wire), line + "y\r\n.\r\n");
  for (const p of pieces) assert(p.length <= 10, `piece of ${p.length} bytes`);
});

Deno.test("DotStuffer never emits a piece ending in a CR whose LF it has not seen", () => {
  for (let len = 5; len < 25; len++) {
    const body = enc.encode("y".repeat(len) + "\r\n.z\r\n");
    for (const chunks of splittings(body)) {
      for (const splitLines of [false, true]) {
        const s = new DotStuffer({ splitLines, maxLineBytes: 10 });
        const wire: Uint8Array[] = [];
        for (const c of chunks) {
          for (const p of s.push(c)) {
            assert(p[p.length - 1] !== 13, "piece ends in CR");
            wire.push(p);
          }
        }
        wire.push(...s.finish());
        assertEquals(dec.decode(concatBytes(wire)), "y".repeat(len) + "\r\n..z\r\n.\r\n");
      }
    }
  }
});

Deno.test("DotStuffer splitLines copies what it holds back (the caller may reuse its chunk)", () => {
  const s = new DotStuffer({ splitLines: true });
  const chunk = enc.encode("abc");
  assertEquals(s.push(chunk), []);
  chunk.fill(0x7a);
  const rest = [...s.push(enc.encode("\r\n")), ...s.finish()];
  assertEquals(rest.map((p) => dec.decode(p)), ["abc\r\n", ".\r\n"]);
});

Deno.test("DotStuffer without splitLines returns the input chunk itself when nothing changes", () => {
  const s = new DotStuffer();
  const chunk = enc.encode("hello\r\nworld\r\n");
  const out = s.push(chunk);
  assertEquals(out.length, 1);
  assert(out[0] === chunk);
  assertEquals(s.push(new Uint8Array(0)), []);
});

/**
 * The stuffer's answer written out plainly: a bare CR or LF anywhere is a fault; otherwise a
 * dot before each line-start dot, CRLF if the body does not end with one, then "." CRLF.
 */
function stuffedByRule(body: Uint8Array): { wire?: Uint8Array; fault?: "bareNewline" } {
  const out: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (b === 10 && body[i - 1] !== 13) return { fault: "bareNewline" };
    if (b === 13 && body[i + 1] !== 10) return { fault: "bareNewline" };
    const lineStart = i === 0 || (body[i - 1] === 10 && body[i - 2] === 13);
    if (lineStart && b === 46) out.push(46);
    out.push(b ?? 0);
  }
  const endsLine = body.length === 0 ||
    (body[body.length - 1] === 10 && body[body.length - 2] === 13);
  return { wire: Uint8Array.from([...out, ...(endsLine ? [] : [13, 10]), 46, 13, 10]) };
}

Deno.test("DotStuffer: long chunks (scanned a word at a time) at any alignment and cut anywhere stuff as the rule says and as byte-by-byte feeding (property, #13)", () => {
  fc.assert(
    fc.property(longBody, fc.array(fc.nat(), { maxLength: 6 }), (b, cuts) => {
      const want = stuffedByRule(b);
      for (const splitLines of [false, true]) {
        for (const chunks of [[b], cutViews(b, cuts), byteByByte(b)]) {
          const got = stuff(chunks, splitLines);
          if (want.fault !== undefined) assertEquals(got.fault, want.fault);
          else assertEquals([got.fault, got.wire], [undefined, want.wire]);
        }
      }
    }),
    { numRuns: runs(300) },
  );
});
