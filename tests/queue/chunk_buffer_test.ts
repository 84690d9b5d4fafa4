import assert from "node:assert/strict";
import { ChunkBuffer } from "../../src/queue/_chunk_buffer.ts";

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
