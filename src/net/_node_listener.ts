/**
 * The node:net side of listener.ts: each accepted socket as a SocketConn. Loaded only for a
 * listener that may start TLS (listener.ts), so that an idle serve without TLS does not load
 * node:net and node:tls.
 */
import net from "node:net";
import { SocketConn } from "./socket_conn.ts";
import { bindServer } from "./bind.ts";
import type { Conn } from "./conn_types.ts";
import type { FdAlarm } from "./fd_alarm.ts";

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

/**
 * Restarts `server`'s accept every REARM_MS while it listens; returns how to stop that. Its
 * failed accept is never reported, so `alarm` hears of a probe first: a listening socket on
 * `host`, port 0, opened and closed (fails with EMFILE while the process has no descriptor).
 */
function keepAccepting(server: net.Server, host: string, alarm: FdAlarm | undefined): () => void {
  const handle = (server as unknown as { _handle?: { listen?: unknown } | null })._handle;
  const listen = handle?.listen;
  // Another runtime's handle: nothing to restart (and nothing known to need it).
  if (typeof listen !== "function") return () => {};
  const address = server.address();
  const where = typeof address === "object" && address !== null
    ? `accept ${
      address.family === "IPv6" ? `[${address.address}]` : address.address
    }:${address.port}`
    : "accept";
  const timer = setInterval(() => {
    if (!server.listening) return;
    if (alarm !== undefined) probe(host, where, alarm);
    try {
      listen.call(handle, BACKLOG);
    } catch {
      // Closed meanwhile.
    }
  }, REARM_MS);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}

/** Whether a descriptor can be had now (see keepAccepting); tells `alarm`. */
function probe(host: string, where: string, alarm: FdAlarm): void {
  try {
    Deno.listen({ hostname: host, port: 0 }).close();
  } catch (err) {
    alarm.failed(where, err);
    return;
  }
  alarm.ok();
}

/** Binds `host:port` with node:net and hands each accepted socket to `onAccepted`. */
export async function listenNode(
  host: string,
  port: number,
  onAccepted: (conn: Conn) => void,
  alarm?: FdAlarm,
): Promise<NodeListener> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    alarm?.ok();
    onAccepted(new SocketConn(s));
  });
  const bound = await bindServer(server, host, port);
  const stopRearming = keepAccepting(server, host, alarm);
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
