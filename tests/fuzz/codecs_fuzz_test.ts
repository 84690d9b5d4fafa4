/**
 * Property tests (fast-check) over the wire codecs and the SASL decoders: hostile input is an
 * expected result, never an exception, and no result depends on how TCP chunked the bytes.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import fc from "fast-check";
import { LineReader } from "../../src/wire/line_reader.ts";
import type { LineResult } from "../../src/wire/line_reader.ts";
import { DataDecoder } from "../../src/wire/data_decoder.ts";
import { DotStuffer } from "../../src/wire/dot_stuffer.ts";
import { parseMailArgument, parseRcptArgument } from "../../src/wire/address.ts";
import { parseMailParameters, parseRcptParameters } from "../../src/wire/esmtp_params.ts";
import { parseAtrnArgs } from "../../src/wire/atrn.ts";
import { parseCommandLine } from "../../src/wire/command.ts";
import { decodeBase64, encodeBase64 } from "../../src/wire/base64.ts";
import {
  parseClientFinal,
  parseClientFirst,
  parseServerFirst,
  saslPrep,
  unescapeScramName,
} from "../../src/auth/scram.ts";
import { runs, splitAt } from "./_runs.ts";
import { concatBytes } from "../../src/wire/bytes.ts";

const CR = 13;
const LF = 10;

/** Bytes biased towards the ones that matter for framing. */
const framingByte = fc.oneof(
  fc.constantFrom(CR, LF, 46, 0, 0xff, 0x20),
  fc.integer({ min: 0, max: 255 }),
);
const framingBytes = (max: number) =>
  fc.array(framingByte, { maxLength: max }).map((a) => Uint8Array.from(a));
const cuts = fc.array(fc.nat(), { maxLength: 12 });

/** A PullSource over fixed chunks. */
function source(chunks: readonly Uint8Array[]) {
  let i = 0;
  return { read: () => Promise.resolve(i < chunks.length ? chunks[i++] ?? null : null) };
}

async function readAllLines(chunks: readonly Uint8Array[], max: number): Promise<string[]> {
  const reader = new LineReader(source(chunks));
  const out: string[] = [];
  for (let n = 0; n < 10_000; n++) {
    const r: LineResult = await reader.readLine(max);
    out.push(r.kind === "line" ? `line:${[...r.line].join(",")}` : r.kind);
    if (r.kind === "eof") return out;
  }
  throw new Error("LineReader did not reach eof");
}

Deno.test("fuzz: LineReader gives the same lines for any chunking", async () => {
  await fc.assert(
    fc.asyncProperty(
      framingBytes(300),
      cuts,
      fc.integer({ min: 3, max: 80 }),
      async (b, c, max) => {
        const whole = await readAllLines([b], max);
        assertEquals(await readAllLines(splitAt(b, c), max), whole);
        for (const l of whole) {
          if (!l.startsWith("line:")) continue;
          const bytes = l.slice(5).split(",").filter((x) => x !== "").map(Number);
          assert(bytes.length + 2 <= max, "a line is never longer than the limit");
          assert(!bytes.includes(CR) && !bytes.includes(LF), "no bare CR or LF inside a line");
        }
      },
    ),
    { numRuns: runs(1000) },
  );
});

function decodeAll(chunks: readonly Uint8Array[], maxMessageBytes = 1 << 20) {
  const d = new DataDecoder({ maxMessageBytes, maxLineBytes: 1000 });
  const body: Uint8Array[] = [];
  let consumed = 0;
  let end = -1;
  for (const chunk of chunks) {
    const r = d.push(chunk);
    for (const s of r.segments) body.push(s.slice());
    if (r.endOffset >= 0) {
      end = consumed + r.endOffset;
      break;
    }
    consumed += chunk.length;
  }
  return { body: concatBytes(body), end, fault: d.fault, size: d.size };
}

Deno.test("fuzz: DataDecoder finds the same end of data and body for any chunking", () => {
  fc.assert(
    fc.property(framingBytes(400), cuts, (b, c) => {
      const input = concatBytes([b, Uint8Array.of(CR, LF, 46, CR, LF)]);
      const whole = decodeAll([input]);
      assert(whole.end >= 0, "the real CRLF.CRLF always ends the body");
      const split = decodeAll(splitAt(input, c));
      assertEquals(split.end, whole.end);
      assertEquals(split.fault, whole.fault);
      if (whole.fault === undefined) assertEquals(split.body, whole.body);
    }),
    { numRuns: runs(2000) },
  );
});

/** A body of CRLF lines without bare CR or LF (anything a receiver could have accepted). */
const cleanBody = fc.array(
  fc.array(fc.oneof(fc.constant(46), fc.integer({ min: 0, max: 255 })), { maxLength: 120 })
    .map((l) => l.filter((b) => b !== CR && b !== LF)),
  { maxLength: 20 },
).map((lines) => concatBytes(lines.map((l) => Uint8Array.from([...l, CR, LF]))));

Deno.test("fuzz: DotStuffer then DataDecoder is the identity for bodies without bare CR/LF", () => {
  fc.assert(
    fc.property(cleanBody, cuts, cuts, fc.boolean(), (body, inCuts, wireCuts, splitLines) => {
      const stuffer = new DotStuffer({ splitLines });
      const wire: Uint8Array[] = [];
      for (const piece of splitAt(body, inCuts)) wire.push(...stuffer.push(piece));
      wire.push(...stuffer.finish());
      assertEquals(stuffer.fault, undefined);
      const bytes = concatBytes(wire);
      const decoded = decodeAll(splitAt(bytes, wireCuts));
      assertEquals(decoded.fault, undefined);
      assertEquals(decoded.end, bytes.length, "the stuffed stream ends exactly at its marker");
      assertEquals(decoded.body, body);
    }),
    { numRuns: runs(2000) },
  );
});

Deno.test("fuzz: DotStuffer never emits a bare CR or LF, whatever the stored body holds", () => {
  fc.assert(
    fc.property(framingBytes(300), cuts, fc.boolean(), (body, c, splitLines) => {
      const stuffer = new DotStuffer({ splitLines });
      const wire: Uint8Array[] = [];
      for (const piece of splitAt(body, c)) wire.push(...stuffer.push(piece));
      if (stuffer.fault !== undefined) return; // the sender refuses the message (tested below)
      wire.push(...stuffer.finish());
      if (stuffer.fault !== undefined) return;
      const bytes = concatBytes(wire);
      for (let i = 0; i < bytes.length; i++) {
        if (bytes[i] === CR) assert(bytes[i + 1] === LF, `bare CR at ${i}`);
        if (bytes[i] === LF) assert(bytes[i - 1] === CR, `bare LF at ${i}`);
      }
      // And it ends exactly at its own marker: no smuggled end can hide earlier in it.
      assertEquals(decodeAll([bytes]).end, bytes.length);
    }),
    { numRuns: runs(2000) },
  );
});

const commandText = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.constantFrom("<", ">", "@", ":", ",", "%", "!", '"', "\\", "[", "]", " ", "=", "\0", ".")
    .chain((sep) =>
      fc.array(fc.oneof(fc.constant(sep), fc.string({ maxLength: 20 })), { maxLength: 20 })
        .map((a) => a.join(""))
    ),
);

Deno.test("fuzz: address, parameter, ATRN and command parsers never throw and keep their limits", () => {
  const utf8 = new TextEncoder();
  fc.assert(
    fc.property(commandText, fc.boolean(), (text, prefix) => {
      for (const parse of [parseMailArgument, parseRcptArgument]) {
        const arg = prefix ? `${parse === parseMailArgument ? "FROM:" : "TO:"}<${text}>` : text;
        const r = parse(arg);
        if (r.ok) {
          const at = r.mailbox.address.lastIndexOf("@");
          const local = at < 0 ? r.mailbox.address : r.mailbox.address.slice(0, at);
          assert(utf8.encode(local).length <= 64 || r.mailbox.address === "", "local ≤ 64");
          assert(utf8.encode(r.mailbox.domain).length <= 255, "domain ≤ 255");
          assert(!/[\0\r\n]/.test(r.mailbox.address), "no NUL/CR/LF in an accepted address");
        }
      }
      parseMailParameters(text);
      parseRcptParameters(text);
      const atrn = parseAtrnArgs(text);
      if (atrn.ok) {
        assert(atrn.domains.length <= 100);
        for (const d of atrn.domains) assert(/^[a-z0-9.-]+$/.test(d), `ATRN domain ${d}`);
      }
      const line = utf8.encode(text);
      parseCommandLine(line, { allowUtf8: true });
      parseCommandLine(line, { allowUtf8: false });
    }),
    { numRuns: runs(3000) },
  );
});

Deno.test("fuzz: base64 and SCRAM message parsers never throw; base64 round-trips", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), commandText, (bytes, text) => {
      assertEquals(decodeBase64(encodeBase64(bytes)), bytes);
      const d = decodeBase64(text);
      assert(d === undefined || d instanceof Uint8Array);
      for (const s of [text, `n,,${text}`, `n=${text},r=${text}`, `c=biws,r=${text},p=${text}`]) {
        parseClientFirst(s);
        parseClientFinal(s);
        parseServerFirst(s);
      }
      saslPrep(text);
      unescapeScramName(text);
    }),
    { numRuns: runs(3000) },
  );
});
