import {
  deepStrictEqual as assertEquals,
  ok as assert,
  rejects as assertRejects,
} from "node:assert/strict";
import { Buffer } from "node:buffer";
import { LineReader } from "../../src/wire/line_reader.ts";
import type { DataResult, LineResult, PullSource } from "../../src/wire/line_reader.ts";
import { cutViews } from "../_helpers/long_bodies.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A source that hands out the given chunks, then end of stream. */
function source(chunks: Uint8Array[]): PullSource {
  const queue = [...chunks];
  return { read: () => Promise.resolve(queue.shift() ?? null) };
}

/** Every way of chunking the input: whole, one byte at a time, one split at each offset. */
function chunkings(input: Uint8Array): Uint8Array[][] {
  const ways = [[input], cutViews(input, Array.from({ length: input.length }, (_, i) => i))];
  for (let i = 1; i < input.length; i++) ways.push(cutViews(input, [i]));
  return ways;
}

type Shown = string | Exclude<LineResult["kind"], "line">;

async function readLines(chunks: Uint8Array[], max: number): Promise<Shown[]> {
  const r = new LineReader(source(chunks));
  const out: Shown[] = [];
  for (;;) {
    const res = await r.readLine(max);
    if (res.kind === "eof") return out;
    out.push(res.kind === "line" ? decoder.decode(res.line) : res.kind);
  }
}

Deno.test("LineReader.readLine() gives the same lines however the input is chunked", async () => {
  const input = encoder.encode("EHLO a\r\nMAIL FROM:<x@y>\r\n\r\nQUIT\r\n");
  for (const chunks of chunkings(input)) {
    assertEquals(await readLines(chunks, 512), ["EHLO a", "MAIL FROM:<x@y>", "", "QUIT"]);
  }
});

Deno.test("LineReader.readLine() rejects a bare LF and a bare CR", async () => {
  for (const chunks of chunkings(encoder.encode("A\nB\rC\r\nD\r\n"))) {
    assertEquals(await readLines(chunks, 512), ["bareNewline", "bareNewline", "D"]);
  }
});

Deno.test("LineReader.readLine() limits a line with its CRLF: N and N+1", async () => {
  const n = "x".repeat(8) + "\r\n"; // 10 bytes
  const n1 = "y".repeat(9) + "\r\n"; // 11 bytes
  for (const chunks of chunkings(encoder.encode(n + n1 + "ok\r\n"))) {
    assertEquals(await readLines(chunks, 10), ["x".repeat(8), "tooLong", "ok"]);
  }
});

Deno.test("LineReader.readLine() drains a very long line with bounded memory", async () => {
  const big = new Uint8Array(100_000).fill(65);
  const chunks = [...cutViews(big, [30_000, 60_000]), encoder.encode("\r\nNOOP\r\n")];
  const r = new LineReader(source(chunks));
  assertEquals((await r.readLine(512)).kind, "tooLong");
  const next = await r.readLine(512);
  assertEquals(next.kind === "line" ? decoder.decode(next.line) : next.kind, "NOOP");
});

async function readBody(
  chunks: Uint8Array[],
  limits = { maxMessageBytes: 1000, maxLineBytes: 100 },
): Promise<{ result: DataResult; body: number[]; rest: string }> {
  const r = new LineReader(source(chunks));
  const body: number[] = [];
  const result = await r.readData(limits, (c) => {
    body.push(...c);
  });
  const rest: string[] = [];
  for (;;) {
    const l = await r.readLine(512);
    if (l.kind !== "line") break;
    rest.push(decoder.decode(l.line));
  }
  return { result, body, rest: rest.join("|") };
}

Deno.test("LineReader.readData() stops at CRLF.CRLF and leaves the next command", async () => {
  const input = encoder.encode("a\r\n..b\r\n.\r\nQUIT\r\n");
  for (const chunks of chunkings(input)) {
    const got = await readBody(chunks);
    assertEquals(got.result, { kind: "ok", size: 7 });
    assertEquals(decoder.decode(Uint8Array.from(got.body)), "a\r\n.b\r\n");
    assertEquals(got.rest, "QUIT");
  }
});

Deno.test("LineReader.readData() reads to the real end after a smuggled end", async () => {
  const input = encoder.encode("a\n.\nMAIL FROM:<x@y>\r\n.\r\nNOOP\r\n");
  for (const chunks of chunkings(input)) {
    const got = await readBody(chunks);
    assertEquals(got.result.kind, "rejected");
    assertEquals(got.result.kind === "rejected" ? got.result.fault : "", "bareNewline");
    assertEquals(got.rest, "NOOP");
  }
});

Deno.test("LineReader.readData() reports end of stream before the end marker", async () => {
  const got = await readBody([encoder.encode("a\r\n.")]);
  assertEquals(got.result, { kind: "eof" });
});

Deno.test("LineReader.readExact() reads exactly N bytes and keeps the rest", async () => {
  const input = encoder.encode("12345NOOP\r\n");
  for (const chunks of chunkings(input)) {
    const r = new LineReader(source(chunks));
    const got: number[] = [];
    assertEquals(await r.readExact(5, (c) => void got.push(...c)), "ok");
    assertEquals(decoder.decode(Uint8Array.from(got)), "12345");
    const l = await r.readLine(512);
    assertEquals(l.kind === "line" ? decoder.decode(l.line) : l.kind, "NOOP");
  }
  const short = new LineReader(source([encoder.encode("12")]));
  assertEquals(await short.readExact(5, () => {}), "eof");
});

/**
 * A source that always has a chunk ready (a peer that keeps sending), recording each read's
 * timeout; after `quietAfter` reads it has nothing more and fails each read at its timeout.
 */
function endlessSource(chunk: string, quietAfter = Infinity) {
  const timeouts: (number | undefined)[] = [];
  const src: PullSource = {
    read(timeoutMs?: number) {
      timeouts.push(timeoutMs);
      if (timeouts.length <= quietAfter) return Promise.resolve(encoder.encode(chunk));
      return new Promise((_, reject) =>
        setTimeout(() => reject(new Error("read timed out")), timeoutMs ?? 0)
      );
    },
  };
  return { src, timeouts };
}

Deno.test("LineReader body reads stop at deadlineAt, a peer with bytes always waiting too (#13)", async (t) => {
  const limits = { maxMessageBytes: 1000, maxLineBytes: 1000 };
  await t.step("readData: passed before a read, nothing is read", async () => {
    const { src, timeouts } = endlessSource("x");
    const r = new LineReader(src);
    assertEquals(await r.readData(limits, () => {}, 1000, performance.now()), { kind: "deadline" });
    assertEquals(timeouts, []);
  });
  await t.step("readData: a body that keeps coming is cut at its deadline", async () => {
    const { src, timeouts } = endlessSource("x".repeat(50));
    const r = new LineReader(src);
    const started = performance.now();
    let reads = 0;
    const got = await r.readData(
      limits,
      async () => {
        reads++;
        await new Promise((res) => setTimeout(res, 5));
      },
      1000,
      started + 60,
    );
    assertEquals(got, { kind: "deadline" });
    assert(
      reads > 1 && performance.now() - started < 500,
      `${reads} reads, ${performance.now() - started} ms`,
    );
    // Each read waits at most until the deadline, never the whole per-read timeout.
    assert(timeouts.every((ms) => ms !== undefined && ms <= 60), String(timeouts));
  });
  await t.step("readExact: a read cut to the deadline fails there: the deadline", async () => {
    const { src, timeouts } = endlessSource("y", 1);
    const r = new LineReader(src);
    assertEquals(await r.readExact(5, () => {}, 1000, performance.now() + 40), "deadline");
    assertEquals(timeouts.length, 2);
    assert((timeouts[1] ?? 1000) <= 40, String(timeouts));
  });
  await t.step(
    "readExact: N octets before the deadline are ok, a read error before it is one",
    async () => {
      const ok = new LineReader(endlessSource("z", 5).src);
      assertEquals(await ok.readExact(5, () => {}, 1000, performance.now() + 5_000), "ok");
      const quiet = new LineReader(endlessSource("z", 5).src);
      // The 6th octet never comes: the per-read timeout (20 ms) ends it long before the deadline.
      await assertRejects(
        quiet.readExact(6, () => {}, 20, performance.now() + 5_000),
        /read timed out/,
      );
    },
  );
});

/** Copies each chunk into an ArrayBuffer of its own, as a socket hands them out. */
function owned(chunks: Uint8Array[]): Uint8Array[] {
  return chunks.map((c) => c.slice());
}

Deno.test("LineReader releaseConsumed: same body and next command however it is chunked", async () => {
  const input = encoder.encode("DATA\r\na\r\n..b\r\n.\r\nQUIT\r\n");
  for (const chunks of chunkings(input)) {
    const r = new LineReader(source(owned(chunks)), { releaseConsumed: true });
    const first = await r.readLine(512);
    assertEquals(first.kind === "line" ? decoder.decode(first.line) : first.kind, "DATA");
    const body: number[] = [];
    const result = await r.readData({ maxMessageBytes: 1000, maxLineBytes: 100 }, (c) => {
      body.push(...c);
    });
    assertEquals(result, { kind: "ok", size: 7 });
    assertEquals(decoder.decode(Uint8Array.from(body)), "a\r\n.b\r\n");
    const next = await r.readLine(512);
    assertEquals(next.kind === "line" ? decoder.decode(next.line) : next.kind, "QUIT");
  }
});

Deno.test("LineReader releaseConsumed frees only whole body chunks, after the consumer", async () => {
  const chunks = owned([
    encoder.encode("DATA\r\nx"),
    encoder.encode("body 1\r\n"),
    encoder.encode("body 2\r\n"),
    encoder.encode(".\r\nQUIT\r\n"),
  ]);
  const r = new LineReader(source(chunks), { releaseConsumed: true });
  await r.readLine(512);
  const seen: boolean[] = [];
  await r.readData({ maxMessageBytes: 1000, maxLineBytes: 100 }, (c) => {
    seen.push(c.buffer.byteLength === 0);
  });
  // Never detached while the consumer holds the bytes.
  assertEquals(seen, [false, false, false]);
  assertEquals(chunks.map((c) => c.byteLength === 0), [false, true, true, false]);
  const next = await r.readLine(512);
  assertEquals(next.kind === "line" ? decoder.decode(next.line) : next.kind, "QUIT");

  const plain = owned([encoder.encode("body\r\n"), encoder.encode(".\r\n")]);
  await new LineReader(source(plain)).readData(
    { maxMessageBytes: 1000, maxLineBytes: 100 },
    () => {},
  );
  assertEquals(plain.map((c) => c.byteLength), [6, 3]);
});

Deno.test("LineReader releaseConsumed: readExact frees a chunk it took whole", async () => {
  const chunks = owned([encoder.encode("12345"), encoder.encode("67890NOOP\r\n")]);
  const r = new LineReader(source(chunks), { releaseConsumed: true });
  const got: number[] = [];
  assertEquals(await r.readExact(10, (c) => void got.push(...c)), "ok");
  assertEquals(decoder.decode(Uint8Array.from(got)), "1234567890");
  assertEquals(chunks.map((c) => c.byteLength), [0, 11]);
  const l = await r.readLine(512);
  assertEquals(l.kind === "line" ? decoder.decode(l.line) : l.kind, "NOOP");
});

Deno.test("LineReader releaseConsumed: readExact frees the rest of a chunk a BDAT line was cut from (#13)", async () => {
  // A pipelined BDAT command and its octets arrive in one socket chunk; the next chunk too.
  const chunks = owned([encoder.encode("BDAT 8 LAST\r\n1234"), encoder.encode("5678QUIT\r\n")]);
  const r = new LineReader(source(chunks), { releaseConsumed: true });
  const line = await r.readLine(512);
  assertEquals(line.kind === "line" ? decoder.decode(line.line) : line.kind, "BDAT 8 LAST");
  const got: number[] = [];
  const seen: boolean[] = [];
  assertEquals(
    await r.readExact(8, (c) => {
      seen.push(c.buffer.byteLength === 0);
      got.push(...c);
    }),
    "ok",
  );
  assertEquals(decoder.decode(Uint8Array.from(got)), "12345678");
  // Never while the consumer holds the bytes; the first chunk after it, the second still holds QUIT.
  assertEquals(seen, [false, false]);
  assertEquals(chunks.map((c) => c.byteLength), [0, 10]);
  const next = await r.readLine(512);
  assertEquals(next.kind === "line" ? decoder.decode(next.line) : next.kind, "QUIT");

  // Without the option nothing is freed.
  const plain = owned([encoder.encode("BDAT 4 LAST\r\nabcd")]);
  const p = new LineReader(source(plain));
  await p.readLine(512);
  assertEquals(await p.readExact(4, () => {}), "ok");
  assertEquals(plain.map((c) => c.byteLength), [17]);
});

Deno.test("LineReader.discardBuffered() drops what was read ahead", async () => {
  const r = new LineReader(source([encoder.encode("STARTTLS\r\nRSET\r\n")]));
  await r.readLine(512);
  assertEquals(r.bufferedBytes, 6);
  assertEquals(r.discardBuffered(), 6);
  assertEquals(r.bufferedBytes, 0);
  assertEquals((await r.readLine(512)).kind, "eof");
});

/** A source of `count` fresh chunks of `size` bytes without LF, then one line; counts held bytes. */
function endlessLineSource(count: number, size: number) {
  const handedOut: Uint8Array[] = [];
  let maxHeld = 0;
  let n = 0;
  /** Bytes handed out that were not given back (detached) yet. */
  const held = () => handedOut.reduce((sum, c) => sum + c.byteLength, 0);
  return {
    get maxHeld() {
      return maxHeld;
    },
    read(): Promise<Uint8Array | null> {
      maxHeld = Math.max(maxHeld, held());
      const chunk = n < count
        ? new Uint8Array(size).fill(0x61)
        : n === count
        ? encoder.encode("\r\nNOOP\r\n")
        : null;
      n++;
      if (chunk !== null) handedOut.push(chunk);
      return Promise.resolve(chunk);
    },
  };
}

Deno.test("LineReader.readLine() holds at most one line limit of an endless line (#10)", async (t) => {
  for (const size of [64 * 1024, 100, 1]) {
    await t.step(`${size}-byte chunks`, async () => {
      // 20 MB in 64 KiB chunks; smaller chunks go less far (but well past the limit) so the
      // test stays quick.
      const count = Math.max(Math.ceil(4096 / size), Math.min(320, Math.ceil((20 << 20) / size)));
      const src = endlessLineSource(count, size);
      const r = new LineReader(src);
      assertEquals((await r.readLine(512)).kind, "tooLong");
      const next = await r.readLine(512);
      assertEquals(next.kind === "line" ? decoder.decode(next.line) : next.kind, "NOOP");
      // At any read: the line limit, plus the chunk that crossed it, plus the one being read.
      const bound = 512 + 2 * size;
      if (src.maxHeld > bound) throw new Error(`held ${src.maxHeld} bytes, bound ${bound}`);
    });
  }
});

Deno.test("LineReader.nextLineIs looks at a whole buffered line without reading (#13)", async () => {
  const r = new LineReader(source([encoder.encode("RCPT TO:<a@b>\r\ndata\r\nDATA2\r\nDAT")]));
  // Nothing buffered yet: never reads to find out.
  assertEquals(r.nextLineIs("DATA"), false);
  await r.readLine(512);
  assertEquals(r.nextLineIs("DATA"), true, "any case");
  assertEquals(r.nextLineIs("DAT"), false, "the whole line");
  assertEquals(r.bufferedBytes, 16, "nothing consumed");
  await r.readLine(512);
  assertEquals(r.nextLineIs("DATA"), false, "DATA2 is not DATA");
  await r.readLine(512);
  assertEquals(r.nextLineIs("DATA"), false, "an incomplete line");
  const bare = new LineReader(source([encoder.encode("x\r\nDATA\n"), encoder.encode("DATA\r")]));
  await bare.readLine(512);
  assertEquals(bare.nextLineIs("DATA"), false, "a bare LF is not CRLF");
  assertEquals(new LineReader(source([])).nextLineIs("A"), false);
  // Non-letters compare exactly: "@" (0x40) is not "`" (0x60).
  const sym = new LineReader(source([encoder.encode("x\r\n`\r\n")]));
  await sym.readLine(512);
  assertEquals(sym.nextLineIs("@"), false);
  assertEquals(sym.nextLineIs("`"), true);
});

Deno.test("LineReader releaseConsumed: the line after a chunk readExact freed whole is read (#13)", async () => {
  // The freed chunk's memory is gone (detached): what is left buffered must not be a view of it,
  // which a plain Uint8Array's indexOf refuses (fetch's reversed session failed on it).
  const chunks = owned([encoder.encode("BDAT 5 LAST\r\n"), encoder.encode("12345")]);
  chunks.push(encoder.encode("QUIT\r\n"));
  const r = new LineReader(source(chunks), { releaseConsumed: true });
  const bdat = await r.readLine(512);
  assertEquals(bdat.kind === "line" ? decoder.decode(bdat.line) : bdat.kind, "BDAT 5 LAST");
  const got: number[] = [];
  assertEquals(await r.readExact(5, (c) => void got.push(...c)), "ok");
  assertEquals(decoder.decode(Uint8Array.from(got)), "12345");
  assertEquals(chunks[1]?.byteLength, 0);
  const quit = await r.readLine(512);
  assertEquals(quit.kind === "line" ? decoder.decode(quit.line) : quit.kind, "QUIT");
});

Deno.test("LineReader hands out plain Uint8Arrays over a socket's Buffer chunks, and still frees them (#13)", async () => {
  // node:net gives Buffers; their indexOf and subarray are node's slower JS versions, so the
  // reader works on plain views of the same bytes (no copy): lines and body pieces are plain
  // Uint8Arrays, and a consumed chunk's memory is still given back.
  const text = ["EHLO a.example\r\nDATA\r\nx", "body 1\r\n", ".\r\nQUIT\r\n"];
  const chunks = text.map((t) => Buffer.from(encoder.encode(t).buffer));
  const r = new LineReader(source(chunks), { releaseConsumed: true });
  const lines: LineResult[] = [await r.readLine(512), await r.readLine(512)];
  const pieces: Uint8Array[] = [];
  const ok = await r.readData({ maxMessageBytes: 1000, maxLineBytes: 100 }, (c) => {
    pieces.push(c.slice());
    assertEquals(c.constructor, Uint8Array);
  });
  lines.push(await r.readLine(512));
  assertEquals(
    lines.map((l) => l.kind === "line" ? [l.line.constructor, decoder.decode(l.line)] : l.kind),
    [[Uint8Array, "EHLO a.example"], [Uint8Array, "DATA"], [Uint8Array, "QUIT"]],
  );
  assertEquals(ok, { kind: "ok", size: 9 });
  assertEquals(decoder.decode(Buffer.concat(pieces)), "xbody 1\r\n");
  // The middle chunk was all body: freed once consumed (the Buffer sees its memory gone).
  assertEquals(chunks.map((c) => c.byteLength === 0), [false, true, false]);
});

Deno.test("LineReader.readLine() runs beforeWait once, before a read that must wait for the peer, and not when the line or more input is here", async () => {
  const events: string[] = [];
  // Two chunks: "NOOP\r\nRS" and "ET\r\n"; `readableBytes` says whether the next is received.
  const chunks = [encoder.encode("NOOP\r\nRS"), encoder.encode("ET\r\n")];
  let received = 0;
  const src: PullSource = {
    read() {
      events.push("read");
      return Promise.resolve(chunks.shift() ?? null);
    },
    get readableBytes() {
      return received;
    },
  };
  const r = new LineReader(src);
  const beforeWait = () => {
    events.push("beforeWait");
    return Promise.resolve();
  };
  received = 8; // the first chunk is here: no wait
  const first = await r.readLine(512, undefined, beforeWait);
  assertEquals(first.kind === "line" ? decoder.decode(first.line) : first.kind, "NOOP");
  assertEquals(events, ["read"]);
  received = 0; // "RS" is buffered, the rest not received: the read waits
  const second = await r.readLine(512, undefined, beforeWait);
  assertEquals(second.kind === "line" ? decoder.decode(second.line) : second.kind, "RSET");
  assertEquals(events, ["read", "beforeWait", "read"]);
  // A failed beforeWait (a write to a gone peer) fails the line.
  await assertRejects(
    r.readLine(512, undefined, () => Promise.reject(new Error("write failed"))),
    /write failed/,
  );
});
