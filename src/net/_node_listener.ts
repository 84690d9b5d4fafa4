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

/** Binds `host:port` with node:net and hands each accepted socket to `onAccepted`. */
export async function listenNode(
  host: string,
  port: number,
  onAccepted: (conn: Conn) => void,
): Promise<NodeListener> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => onAccepted(new SocketConn(s)));
  const bound = await bindServer(server, host, port);
  return {
    ...bound,
    // server.close()'s callback waits for every open connection to end; stopping the
    // accept is immediate, so do not wait for that callback.
    close: () => {
      if (server.listening) server.close();
      return Promise.resolve();
    },
  };
}
