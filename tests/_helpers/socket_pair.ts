/**
 * A `SocketConn` over a real loopback TCP connection (node:net on our side, a Deno.TcpConn as
 * the peer), for tests of the socket layer itself. Both ends are closed afterwards.
 */
import net from "node:net";
import { SocketConn } from "../../src/net/conn.ts";

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
  const conn = new SocketConn(socket);
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
