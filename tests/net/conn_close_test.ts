/**
 * Conn.close() over a real TCP socket: everything written before it reaches the peer, then the
 * end of the stream (not a reset), and close() does not wait for the peer; the addresses read
 * on demand (#13) are the socket's.
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import net from "node:net";
import { SocketConn } from "../../src/net/conn.ts";
import type { Conn } from "../../src/net/conn.ts";
import { listen } from "../../src/net/listener.ts";
import { CONN_KINDS } from "../_helpers/socket_pair.ts";

const enc = new TextEncoder();

for (const { name, withPair } of CONN_KINDS) {
  Deno.test(`${name}: Conn.close() right after a write: the peer reads every byte, then EOF (#13)`, async () => {
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

  Deno.test(`${name}: Conn addresses read on demand are the socket's (#13)`, async () => {
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
}

/** A loopback server handing each connection to `onConn`: node:net (SocketConn) or listen(). */
type ServeWith = (onConn: (conn: Conn) => void) => Promise<{ port: number; close(): void }>;

const SERVERS: readonly (readonly [string, ServeWith])[] = [
  ["SocketConn", async (onConn) => {
    const server = net.createServer({ allowHalfOpen: true }, (s) => onConn(new SocketConn(s)));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
  }],
  ["NativeConn", async (onConn) => {
    const l = await listen({ host: "127.0.0.1", port: 0, onConn, native: true });
    return { port: l.port, close: () => void l.close() };
  }],
];

for (const [name, serveWith] of SERVERS) {
  Deno.test(`${name}: Conn.close() with the peer still sending: it reads our last reply, then EOF, not a reset (#13)`, async () => {
    // A client that pipelined past QUIT, or keeps sending after a 421: its bytes are still
    // unread in our kernel when we close. The FIN must go out before the close, else the peer
    // gets a reset and may lose the reply. 10 rounds: without the FIN about a third of them fail.
    const results: string[] = [];
    const server = await serveWith(async (conn) => {
      let got = "";
      while (!got.includes("QUIT\r\n")) {
        const chunk = await conn.read(5_000);
        if (chunk === null) break;
        got += new TextDecoder().decode(chunk);
      }
      await new Promise((r) => setTimeout(r, 100)); // more input arrives, unread
      await conn.write(enc.encode("221 2.0.0 Bye\r\n"));
      await conn.close();
    });
    const port = server.port;
    try {
      for (let round = 0; round < 10; round++) {
        const peer = await Deno.connect({ hostname: "127.0.0.1", port });
        let isSending = true;
        const junk = new Uint8Array(4096).fill(0x41);
        const sending = (async () => {
          try {
            await peer.write(enc.encode("QUIT\r\n"));
            for (let i = 0; isSending && i < 2_000; i++) {
              await peer.write(junk);
              await new Promise((r) => setTimeout(r, 0));
            }
          } catch {
            // our close ends the peer's writes; that is expected
          }
        })();
        await new Promise((r) => setTimeout(r, 50)); // the peer reads a little later
        let text = "";
        let failure = "";
        const buf = new Uint8Array(65536);
        try {
          for (;;) {
            const n = await peer.read(buf);
            if (n === null) break;
            text += new TextDecoder().decode(buf.subarray(0, n));
          }
        } catch (err) {
          failure = `+${(err as Error).name}`;
        }
        isSending = false;
        await sending;
        peer.close();
        results.push(`${text.includes("221 2.0.0 Bye") ? "reply" : "no reply"}${failure}`);
      }
    } finally {
      server.close();
    }
    assertEquals(results, Array.from({ length: 10 }, () => "reply"));
  });
}
