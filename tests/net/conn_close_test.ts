/**
 * Conn.close() over a real TCP socket: everything written before it reaches the peer, then the
 * end of the stream (not a reset), and close() does not wait for the peer; the addresses read
 * on demand (#13) are the socket's.
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { withSocketPair as withPair } from "../_helpers/socket_pair.ts";

const enc = new TextEncoder();

Deno.test("Conn.close() right after a write: the peer reads every byte, then EOF (#13)", async () => {
  // A short reply (the usual 221) and one larger than the kernel buffers take at once.
  for (const size of [9, 8 * 1024 * 1024]) {
    await withPair(async (conn, peer) => {
      const bytes = new Uint8Array(size).fill(0x61);
      bytes.set(enc.encode("221 Bye\r\n").subarray(0, size));
      const written = conn.write(bytes);
      const reading = new Response(peer.readable).arrayBuffer();
      await written;
      const t0 = performance.now();
      await conn.close();
      // A peer reading is not waited for beyond the flush of what is queued.
      ok(performance.now() - t0 < 4_000, `close() took ${performance.now() - t0} ms`);
      const got = new Uint8Array(await reading);
      assertEquals(got.length, size);
      assertEquals(got, bytes);
      ok(conn.closed);
    });
  }
});

Deno.test("Conn addresses read on demand are the socket's (#13)", async () => {
  await withPair(async (conn, peer) => {
    const local = peer.remoteAddr as Deno.NetAddr;
    const remote = peer.localAddr as Deno.NetAddr;
    assertEquals(
      [conn.localAddress, conn.localPort, conn.remoteAddress, conn.remotePort],
      [local.hostname, local.port, remote.hostname, remote.port],
    );
    await conn.close();
    // Still the same after the socket is gone.
    assertEquals([conn.localPort, conn.remotePort], [local.port, remote.port]);
  });
});
