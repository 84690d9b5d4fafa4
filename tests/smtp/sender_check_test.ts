import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { BodyScanner, checkBody, HOLD_BODY_BYTES } from "../../src/smtp/_sender_check.ts";

const enc = new TextEncoder();

/** Scans `body` fed as the given pieces; returns the fault or undefined. */
function scan(pieces: readonly Uint8Array[], allowEightBit = true, maxLineOctets = 1000) {
  const s = new BodyScanner({ maxLineOctets, allowEightBit });
  for (const p of pieces) s.push(p);
  return s.finish();
}

/** The same body whole, one byte at a time, and split at every offset. */
function splits(body: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [[body], [...body].map((b) => Uint8Array.of(b))];
  for (let i = 0; i <= body.length; i++) out.push([body.subarray(0, i), body.subarray(i)]);
  return out;
}

Deno.test("BodyScanner finds the same fault however the body is split (#10)", async (t) => {
  const line = (n: number) => "a".repeat(n);
  const rows: { what: string; body: Uint8Array; allowEightBit?: boolean; want?: string }[] = [
    { what: "CRLF lines", body: enc.encode("A: b\r\n\r\nbody\r\n.\r\n") },
    { what: "an empty body", body: new Uint8Array(0) },
    { what: "no CRLF at the end", body: enc.encode("A: b\r\n\r\nlast") },
    { what: "a bare LF", body: enc.encode("A: b\r\nx\ny\r\n"), want: "bareNewline" },
    { what: "a bare LF first", body: enc.encode("\nA: b\r\n"), want: "bareNewline" },
    { what: "a bare CR", body: enc.encode("A: b\rx\r\n"), want: "bareNewline" },
    { what: "a CR at the very end", body: enc.encode("A: b\r\nx\r"), want: "bareNewline" },
    { what: "CR CR LF", body: enc.encode("A: b\r\r\n"), want: "bareNewline" },
    { what: "998 octets + CRLF (N)", body: enc.encode(`${line(998)}\r\nok\r\n`) },
    { what: "999 octets + CRLF (N+1)", body: enc.encode(`${line(999)}\r\n`), want: "lineTooLong" },
    { what: "998 octets, last line, no CRLF (N)", body: enc.encode(`x\r\n${line(998)}`) },
    {
      what: "999 octets, last line, no CRLF (N+1)",
      body: enc.encode(`x\r\n${line(999)}`),
      want: "lineTooLong",
    },
    { what: "8-bit allowed", body: Uint8Array.of(0x41, 0xe9, 13, 10) },
    {
      what: "8-bit not allowed",
      body: Uint8Array.of(0x41, 0xe9, 13, 10),
      allowEightBit: false,
      want: "eightBit",
    },
  ];
  for (const row of rows) {
    await t.step(row.what, () => {
      for (const pieces of splits(row.body)) {
        assertEquals(scan(pieces, row.allowEightBit ?? true), row.want);
      }
    });
  }
});

Deno.test("checkBody() keeps a small body and reads a large one again to send it", async () => {
  let reads = 0;
  const small = () => {
    reads++;
    return [enc.encode("a\r\n"), enc.encode("b\r\n")];
  };
  const kept = await checkBody(small, { params: {}, peerHasEightBitMime: true });
  assertEquals(kept.kind, "send");
  assertEquals(reads, 1);
  if (kept.kind === "send") assertEquals([...(kept.body as Uint8Array[])].length, 2);

  reads = 0;
  const chunk = enc.encode(("x".repeat(62) + "\r\n").repeat(1024));
  const large = () => {
    reads++;
    return Array.from({ length: Math.ceil(HOLD_BODY_BYTES / chunk.length) + 1 }, () => chunk);
  };
  const again = await checkBody(large, { params: {}, peerHasEightBitMime: true });
  assertEquals(again.kind, "send");
  let bytes = 0;
  if (again.kind === "send") { for await (const c of again.body) bytes += c.length; }
  assertEquals(reads, 2);
  assertEquals(bytes > HOLD_BODY_BYTES, true);
});

Deno.test("checkBody() reads 8-bit in an 8BITMIME-declared body as allowed", async () => {
  const body = () => [Uint8Array.of(0xe9, 13, 10)];
  const declared = await checkBody(body, {
    params: { body: "8BITMIME" },
    peerHasEightBitMime: false,
  });
  assertEquals(declared.kind, "send");
  const undeclared = await checkBody(body, { params: {}, peerHasEightBitMime: false });
  assertEquals(undeclared.kind, "refused");
  if (undeclared.kind === "refused") assertEquals(undeclared.reply.enhanced, "5.6.3");
});

/** The rules the scanner applies, octet by octet over a whole body (the reference). */
function referenceFault(body: Uint8Array, maxLineOctets: number): string | undefined {
  let lineStart = 0;
  let bareCr = false;
  for (let i = 0; i < body.length; i++) {
    if (body[i] === 10) {
      if (body[i - 1] !== 13) return "bareNewline";
      if (i - lineStart + 1 > maxLineOctets) return "lineTooLong";
      lineStart = i + 1;
    } else if (body[i] === 13 && i + 1 < body.length && body[i + 1] !== 10) bareCr = true;
  }
  const tail = body.length - lineStart;
  if (tail + 1 > maxLineOctets) return "lineTooLong";
  if (bareCr || body[body.length - 1] === 13) return "bareNewline";
  return tail > 0 && tail + 2 > maxLineOctets ? "lineTooLong" : undefined;
}

Deno.test("BodyScanner agrees with an octet-by-octet reading on random bodies, aligned or not (#13)", () => {
  // Octets around CR and LF, the word test's bound (0x0E), 8-bit ones and plain text.
  const alphabet = [10, 13, 13, 10, 0x0c, 0x0e, 0x0f, 0x09, 0x00, 0x7f, 0x80, 0x8d, 0xff, 0x61];
  // xorshift32: an LCG's low bits repeat with a short period, so `seed % n` would leave
  // combinations out.
  let seed = 0x2545f491;
  const random = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  for (let round = 0; round < 3000; round++) {
    // Some bodies long enough to be scanned a word at a time (wire/line_break_scan.ts), with
    // their special octets rarer so that whole words are plain text.
    const isLong = random(4) === 0;
    const length = isLong ? 256 + random(1000) : random(40);
    const backing = new Uint8Array(length + 8);
    const offset = random(4);
    const body = backing.subarray(offset, offset + length);
    for (let i = 0; i < length; i++) {
      // Mostly CRLF-terminated text, so that some bodies pass and line lengths matter.
      body[i] = random(isLong ? 200 : 3) === 0 ? alphabet[random(alphabet.length)]! : 0x61;
      if (random(isLong ? 40 : 6) === 0 && i + 1 < length) {
        body[i] = 13;
        body[++i] = 10;
      }
    }
    const max = isLong ? 20 + random(120) : 3 + random(12);
    const want = referenceFault(body, max);
    assertEquals(scan([body], true, max), want, `body ${[...body]} max ${max}`);
    // Split anywhere, a body fails or passes the same (which fault comes first may differ).
    const cut = random(length + 1);
    const split = scan([body.subarray(0, cut), body.subarray(cut)], true, max);
    assertEquals(split === undefined, want === undefined);
  }
});
