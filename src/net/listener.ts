/**
 * TCP listeners (plain or implicit TLS) that hand each accepted connection to a handler as a
 * Conn: on node:net (SocketConn) or, where asked, on Deno.listen (NativeConn).
 * Does not know SMTP; enforces nothing but what it is told (connection limits live with the
 * caller, which can still greet with a 421 before closing).
 */
import type tls from "node:tls";
import type { Conn } from "./conn_types.ts";
import { NativeConn } from "./native_conn.ts";
import type { FdAlarm } from "./fd_alarm.ts";

/** The pause after a failed accept (e.g. EMFILE) before the next one. */
const ACCEPT_RETRY_MS = 100;

/** A bound listener. */
export interface Listener {
  /** The address actually bound, `HOST:PORT` (port 0 resolved). */
  readonly address: string;
  readonly port: number;
  /**
   * Stops accepting at once; open connections are left to their handlers (it does not wait
   * for them: a silent peer must not hold a shutdown).
   */
  close(): Promise<void>;
}

/** Splits `HOST:PORT` (or `[v6]:PORT`) into parts; `undefined` when malformed. */
export function splitHostPort(value: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]*)):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return undefined;
  return { host: m[1] ?? m[2] ?? "", port };
}

/** `HOST:PORT`, an IPv6 host in brackets (`[::1]:25`): the form of the config and the logs. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** What `listen` is told. */
export interface ListenOptions {
  host: string;
  port: number;
  /**
   * Implicit TLS from the first byte; a function is asked at each accepted connection (the
   * certificate can be reloaded while the listener runs).
   */
  secureContext?: tls.SecureContext | (() => tls.SecureContext);
  onConn: (conn: Conn) => void;
  /** Implicit TLS: ask for a client certificate without requiring one (AUTH EXTERNAL). */
  requestCert?: boolean;
  /** An implicit-TLS handshake failed (garbage, scanner, wrong protocol): a peer fault. */
  onTlsFailure?: (remoteAddress: string, err: unknown) => void;
  /**
   * Implicit TLS: asked at each accept, before the handshake. A slot's release (called when the
   * handshake ends, either way), or undefined: over the limits, the connection is closed at once
   * (and `onTlsFailure` told). A silent peer otherwise holds its descriptor up to the deadline.
   */
  admitHandshake?: (remoteAddress: string) => (() => void) | undefined;
  /**
   * Accept on Deno.listen (NativeConn) instead of node:net (SocketConn). For listeners where no
   * TLS can follow: node:tls over a native connection measured slower than over node:net
   * (docs/architecture.md), while plain TCP is faster native.
   */
  native?: boolean;
  /** Native only: read ahead of the handler's reads (default true; NativeConnOptions). */
  readAhead?: boolean;
  /** Native only: give each connection's read buffer to the next at close (NativeConnOptions). */
  recycleReadBuffer?: boolean;
  /** Told accepts that fail for want of a descriptor, and those that work (fd_alarm.ts). */
  fdAlarm?: FdAlarm;
}

/** Binds `host:port` and calls `onConn` for every accepted connection. */
export function listen(opts: ListenOptions): Promise<Listener> {
  const contextOf = opts.secureContext;
  const onAccepted = (conn: Conn): void => {
    if (contextOf === undefined) {
      opts.onConn(conn);
      return;
    }
    // Implicit TLS wraps the accepted connection like STARTTLS does: in Deno 2.9,
    // tls.createServer({ secureContext }) answers every handshake with an access_denied
    // alert, while new tls.TLSSocket(socket, { isServer, secureContext }) works.
    const release = opts.admitHandshake === undefined
      ? () => {}
      : opts.admitHandshake(conn.remoteAddress);
    if (release === undefined) {
      conn.destroy();
      opts.onTlsFailure?.(conn.remoteAddress, new Error("too many connections"));
      return;
    }
    const secureContext = typeof contextOf === "function" ? contextOf() : contextOf;
    // A failed handshake is one bad peer, not a listener failure.
    conn.startTlsServer({ secureContext, ...(opts.requestCert ? { requestCert: true } : {}) })
      .then(() => {
        release();
        opts.onConn(conn);
      }, (err: unknown) => {
        release();
        conn.destroy();
        opts.onTlsFailure?.(conn.remoteAddress, err);
      });
  };
  if (opts.native) return listenNative(opts, onAccepted);
  // node:net and node:tls load only for a listener that needs them: an idle serve without TLS
  // does without (2.4-4.7 MB of RSS, measured).
  return import("./_node_listener.ts").then((m) =>
    m.listenNode(opts.host, opts.port, onAccepted, opts.fdAlarm)
  );
}

/** Deno.listen: each accepted connection as a NativeConn. */
function listenNative(opts: ListenOptions, onAccepted: (conn: Conn) => void): Promise<Listener> {
  let server: Deno.TcpListener;
  try {
    server = Deno.listen({ hostname: opts.host, port: opts.port });
  } catch (err) {
    return Promise.reject(err);
  }
  let closed = false;
  const connOptions = {
    readAhead: opts.readAhead ?? true,
    recycleReadBuffer: opts.recycleReadBuffer ?? false,
  };
  const port = server.addr.port;
  const shown = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  const alarm = opts.fdAlarm;
  void acceptLoop(
    server,
    (tcp) => {
      alarm?.ok();
      onAccepted(new NativeConn(tcp, connOptions));
    },
    () => closed,
    (err) => alarm?.failed(`accept ${shown}:${port}`, err),
  );
  return Promise.resolve({
    address: `${shown}:${port}`,
    port,
    // Stops the accept at once; open connections are their handlers' to end.
    close: () => {
      if (!closed) {
        closed = true;
        server.close();
      }
      return Promise.resolve();
    },
  });
}
/** An accept that failed for that one connection only (the peer reset it first). */
function isPeerGone(err: unknown): boolean {
  return err instanceof Deno.errors.NotConnected || err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted;
}

/**
 * Accepts until the listener is closed. A failed accept that is not the close neither ends
 * the listener nor spins.
 */
async function acceptLoop(
  server: Deno.TcpListener,
  onAccepted: (tcp: Deno.TcpConn) => void,
  isClosed: () => boolean,
  onFailed: (err: unknown) => void,
): Promise<void> {
  for (;;) {
    let tcp: Deno.TcpConn;
    try {
      tcp = await server.accept();
    } catch (err) {
      if (isClosed()) return;
      // A connection the client reset before we took it (a health check, a scanner) is
      // that connection's end, not the listener's: accept the next one at once. Other
      // failures (too many open files) get a pause, so that the loop does not spin.
      if (isPeerGone(err)) continue;
      onFailed(err);
      await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS));
      continue;
    }
    onAccepted(tcp);
  }
}
