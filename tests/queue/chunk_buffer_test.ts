import assert from "node:assert/strict";
import { ChunkBuffer, ChunkPool } from "../../src/queue/_chunk_buffer.ts";

/** Feeds `body` in pieces of `piece` bytes; returns the chunks cut (copied) and the rest. */
function cut(body: Uint8Array, chunkBytes: number, piece: number): Uint8Array[] {
  const buf = new ChunkBuffer(chunkBytes);
  const out: Uint8Array[] = [];
  for (let at = 0; at < body.length; at += piece) {
    for (const c of buf.add(body.subarray(at, at + piece))) out.push(c.slice());
  }
  if (!buf.isEmpty) out.push(buf.take().slice());
  return out;
}

Deno.test("ChunkBuffer cuts full chunks of exactly chunkBytes while it grows (#13)", () => {
  const chunkBytes = 64 * 1024;
  for (
    const length of [0, 1, 4096, chunkBytes - 1, chunkBytes, chunkBytes + 1, 3 * chunkBytes + 5]
  ) {
    const body = new Uint8Array(length).map((_, i) => (i * 7 + 3) & 0xff);
    for (const piece of [1000, 8192, 65537, 200_000]) {
      const chunks = cut(body, chunkBytes, piece);
      const sizes = chunks.map((c) => c.length);
      const full = Math.floor(length / chunkBytes);
      const rest = length % chunkBytes;
      assert.deepEqual(
        sizes,
        [...Array(full).fill(chunkBytes), ...(rest > 0 ? [rest] : [])],
        `length ${length}, pieces of ${piece}`,
      );
      const joined = new Uint8Array(length);
      let at = 0;
      for (const c of chunks) {
        joined.set(c, at);
        at += c.length;
      }
      assert.deepEqual(joined, body);
    }
  }
});

Deno.test("ChunkBuffer reuses its buffer after a full chunk and works with tiny chunk sizes", () => {
  const body = new Uint8Array(10).map((_, i) => i);
  assert.deepEqual(cut(body, 3, 4).map((c) => [...c]), [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]);
  assert.deepEqual(cut(body, 1, 10).length, 10);
});

Deno.test("ChunkBuffer with a ChunkPool: bodies written at once over reused buffers keep their bytes (#13)", () => {
  const chunkBytes = 64 * 1024;
  const pool = new ChunkPool(chunkBytes, 2);
  const lengths = [100_000, 4096, chunkBytes, 8 * 1024 + 1, 3 * chunkBytes + 5, 0, 20_000];
  const bodies = lengths.map((length, b) =>
    new Uint8Array(length).map((_, i) => (i * 7 + 3 * b + 1) & 0xff)
  );
  // Three rounds: the later ones take the buffers the earlier ones gave back.
  for (let round = 0; round < 3; round++) {
    const bufs = bodies.map(() => new ChunkBuffer(chunkBytes, pool));
    const out: Uint8Array[][] = bodies.map(() => []);
    // Interleaved pieces of 14 000 bytes (a socket read), body by body.
    for (let at = 0; at < Math.max(...lengths); at += 14_000) {
      bodies.forEach((body, b) => {
        for (const c of bufs[b]!.add(body.subarray(at, at + 14_000))) out[b]!.push(c.slice());
      });
    }
    bodies.forEach((body, b) => {
      const buf = bufs[b]!;
      if (!buf.isEmpty) out[b]!.push(buf.take().slice());
      buf.release();
      const sizes = out[b]!.map((c) => c.length);
      assert.ok(sizes.every((s, i) => s === chunkBytes || i === sizes.length - 1), `${sizes}`);
      const joined = new Uint8Array(body.length);
      let at = 0;
      for (const c of out[b]!) {
        joined.set(c, at);
        at += c.length;
      }
      assert.deepEqual(joined, body, `round ${round}, body ${b}`);
    });
    // Given back, but never more than it keeps.
    assert.equal(pool.free, 2);
  }
});

Deno.test("ChunkBuffer takes no pooled buffer for a body within its first allocation (#13)", () => {
  const pool = new ChunkPool(64 * 1024, 4);
  const first = pool.take();
  pool.give(first);
  const buf = new ChunkBuffer(64 * 1024, pool);
  for (const _ of buf.add(new Uint8Array(8 * 1024))) throw new Error("no full chunk");
  assert.equal(pool.free, 1);
  for (const _ of buf.add(new Uint8Array(1))) throw new Error("no full chunk");
  assert.equal(pool.free, 0);
  assert.equal(buf.take().length, 8 * 1024 + 1);
  buf.release();
  assert.equal(pool.free, 1);
  assert.equal(pool.take(), first);
});

Deno.test("ChunkBuffer with a ChunkPool reuses the first allocation a finished body gave back (#13)", () => {
  const pool = new ChunkPool(64 * 1024, 4);
  const a = new ChunkBuffer(64 * 1024, pool);
  for (const _ of a.add(new Uint8Array(4096).fill(1))) throw new Error("no full chunk");
  const first = a.take().buffer;
  a.release();
  assert.equal(pool.freeFirst, 1);
  // The next small body copies into that same buffer: no new allocation per message.
  const b = new ChunkBuffer(64 * 1024, pool);
  for (const _ of b.add(new Uint8Array(4096).fill(2))) throw new Error("no full chunk");
  assert.equal(pool.freeFirst, 0);
  const view = b.take();
  assert.equal(view.buffer, first);
  assert.deepEqual(view, new Uint8Array(4096).fill(2));
  // Outgrowing it: the first allocation goes back at once, the body moves to a chunk buffer.
  for (const _ of b.add(new Uint8Array(10_000).fill(3))) throw new Error("no full chunk");
  assert.equal(pool.freeFirst, 1);
  assert.deepEqual(b.take(), new Uint8Array(10_000).fill(3));
  b.release();
  assert.equal(pool.free, 1);
  assert.equal(pool.freeFirst, 1);
});

Deno.test("a ChunkPool keeps at most 32 first allocations (#13)", () => {
  const pool = new ChunkPool(64 * 1024, 4);
  const bufs = Array.from({ length: 33 }, () => new ChunkBuffer(64 * 1024, pool));
  for (const buf of bufs) for (const _ of buf.add(new Uint8Array(100))) throw new Error("no chunk");
  for (const buf of bufs.slice(0, 32)) buf.release();
  assert.equal(pool.freeFirst, 32);
  bufs[32]!.release();
  assert.equal(pool.freeFirst, 32);
});
