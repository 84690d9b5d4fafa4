/**
 * A Conn over a real loopback TCP connection, for tests of the socket layer itself: a
 * `SocketConn` (node:net on our side) or a `NativeConn` (Deno.TcpConn), a Deno.TcpConn as the
 * peer. Both ends are closed afterwards. `CONN_KINDS` runs a test on both.
 */
import net from "node:net";
import { NativeConn, SocketConn } from "../../src/net/conn.ts";
import type { ByteSource, Conn } from "../../src/net/conn.ts";
import type { NativeConnOptions } from "../../src/net/native_conn.ts";
import { concatBytes } from "../../src/wire/bytes.ts";

/** Runs `fn` with a connected SocketConn and its peer. */
export async function withSocketPair(
  fn: (conn: SocketConn, peer: Deno.TcpConn) => Promise<void>,
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const socket = net.connect({ host: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  const peer = await accepted;
  listener.close();
  await runAndClose(new SocketConn(socket), peer, fn);
}

/** Runs `fn` with a connected NativeConn (the connecting side) and its peer. */
export async function withNativePair(
  fn: (conn: NativeConn, peer: Deno.TcpConn) => Promise<void>,
  opts: NativeConnOptions = {},
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const peer = await accepted;
  listener.close();
  await runAndClose(new NativeConn(tcp, opts), peer, fn);
}

/** A TCP Conn: it always knows how many bytes wait unread. */
export type TcpConn = Conn & { readonly readableBytes: number };

/** Both kinds of TCP Conn, named, for tests that hold for each. */
export const CONN_KINDS: readonly {
  readonly name: string;
  readonly withPair: (fn: (conn: TcpConn, peer: Deno.TcpConn) => Promise<void>) => Promise<void>;
}[] = [
  { name: "SocketConn", withPair: withSocketPair },
  { name: "NativeConn", withPair: withNativePair },
];

async function runAndClose<C extends Conn>(
  conn: C,
  peer: Deno.TcpConn,
  fn: (conn: C, peer: Deno.TcpConn) => Promise<void>,
): Promise<void> {
  try {
    await fn(conn, peer);
  } finally {
    conn.destroy();
    try {
      peer.close();
    } catch {
      // already closed
    }
  }
}

/** Reads `source` until its end, or until `limit` bytes came; returns them in one array. */
export async function readAll(source: ByteSource, limit = Infinity): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  while (length < limit) {
    const chunk = await source.read(10_000);
    if (chunk === null) break;
    chunks.push(chunk);
    length += chunk.byteLength;
  }
  return concatBytes(chunks);
}
