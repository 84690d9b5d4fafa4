/**
 * connect(): a Conn out to a host (or a unix socket). A plain-only TCP connect is a NativeConn
 * and loads no node: module; node:net and SocketConn load when a connection needs them (TLS
 * may follow, or a unix socket), so a plain `fetch --once` starts without them.
 */
import { TimeoutError } from "./conn_types.ts";
import type { Conn, TlsClientParams, TlsUpgradeResult } from "./conn_types.ts";
import { NativeConn } from "./native_conn.ts";

/** Where to connect: TCP `host:port`, or a unix socket `path` (local LMTP). */
export type ConnectTarget = { host: string; port: number } | { path: string };

/** Connects out over TCP or a unix socket (optionally implicit TLS) and returns a Conn. */
export async function connect(
  opts: ConnectTarget & {
    timeoutMs?: number;
    tls?: TlsClientParams;
    /**
     * No TLS will follow (neither implicit nor STARTTLS): the connection is a NativeConn
     * (Deno.TcpConn), faster for plain TCP. Otherwise node:net, whose TLS measured cheaper
     * than node:tls over a native connection (docs/architecture.md).
     */
    plainOnly?: boolean;
  },
): Promise<{ conn: Conn; tls?: TlsUpgradeResult }> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const conn = "path" in opts
    ? await connectNode({ path: opts.path }, opts.path, timeoutMs)
    : opts.plainOnly && !opts.tls
    ? await connectNative(opts.host, opts.port, timeoutMs)
    : await connectNode(
      { host: opts.host, port: opts.port },
      `${opts.host}:${opts.port}`,
      timeoutMs,
    );
  if (!opts.tls) return { conn };
  return { conn, tls: await conn.startTlsClient(opts.tls) };
}

/** A native TCP connection within `timeoutMs` (one that completes later is closed at once). */
function connectNative(host: string, port: number, timeoutMs: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    let timedOut = false;
    // The timeout also ends the connect itself (no attempt left running behind it).
    const abort = new AbortController();
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
      reject(new TimeoutError(`connect to ${host}:${port}`));
    }, timeoutMs);
    // Deno takes an IPv6 literal without brackets, as given in the config's `[v6]:port`.
    Deno.connect({ hostname: host, port, signal: abort.signal }).then((tcp) => {
      clearTimeout(timer);
      if (timedOut) tcp.close();
      else resolve(new NativeConn(tcp));
    }, (err) => {
      clearTimeout(timer);
      if (!timedOut) reject(err);
    });
  });
}

/** A node:net connection (TCP or unix socket) within `timeoutMs`. */
async function connectNode(
  target: { host: string; port: number } | { path: string },
  where: string,
  timeoutMs: number,
): Promise<Conn> {
  const [{ default: net }, { SocketConn }] = await Promise.all([
    import("node:net"),
    import("./socket_conn.ts"),
  ]);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ ...target, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TimeoutError(`connect to ${where}`));
    }, timeoutMs);
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(new SocketConn(socket));
    });
  });
}
