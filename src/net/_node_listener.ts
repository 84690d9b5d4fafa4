/**
 * The node:net side of listener.ts: each accepted socket as a SocketConn. Loaded only for a
 * listener that may start TLS (listener.ts), so that an idle serve without TLS does not load
 * node:net and node:tls.
 */
import net from "node:net";
import { SocketConn } from "./socket_conn.ts";
import { bindServer } from "./bind.ts";
import type { Conn } from "./conn_types.ts";

/** A bound node:net listener: its address and how to stop accepting. */
export interface NodeListener {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * How often the accept of a node:net listener is started again. On Deno 2.9.6 a node:net server
 * stops accepting for good after one failed accept (EMFILE: out of file descriptors), with no
 * error event: the backlog fills and is never served, so a burst of connections (or of TLS
 * handshakes) past `ulimit -n` shut the port until a restart. Listening again on its handle
 * starts the accept anew; on a healthy listener it changes nothing (tests/security/
 * fd_exhaustion_test.ts). Once a second, never per connection.
 */
const REARM_MS = 1_000;

/** The backlog node:net listens with by default (Node's). */
const BACKLOG = 511;

/** Restarts `server`'s accept every REARM_MS while it listens; returns how to stop that. */
function keepAccepting(server: net.Server): () => void {
  const handle = (server as unknown as { _handle?: { listen?: unknown } | null })._handle;
  const listen = handle?.listen;
  // Another runtime's handle: nothing to restart (and nothing known to need it).
  if (typeof listen !== "function") return () => {};
  const timer = setInterval(() => {
    if (!server.listening) return;
    try {
      listen.call(handle, BACKLOG);
    } catch {
      // Closed meanwhile.
    }
  }, REARM_MS);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}

/** Binds `host:port` with node:net and hands each accepted socket to `onAccepted`. */
export async function listenNode(
  host: string,
  port: number,
  onAccepted: (conn: Conn) => void,
): Promise<NodeListener> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => onAccepted(new SocketConn(s)));
  const bound = await bindServer(server, host, port);
  const stopRearming = keepAccepting(server);
  return {
    ...bound,
    // server.close()'s callback waits for every open connection to end; stopping the
    // accept is immediate, so do not wait for that callback.
    close: () => {
      stopRearming();
      if (server.listening) server.close();
      return Promise.resolve();
    },
  };
}
