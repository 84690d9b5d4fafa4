/**
 * TCP listeners (plain or implicit TLS) that hand each accepted socket to a handler as a Conn.
 * Does not know SMTP; enforces nothing but what it is told (connection limits live with the
 * caller, which can still greet with a 421 before closing).
 */
import net from "node:net";
import tls from "node:tls";
import { Buffer } from "node:buffer";
import { SocketConn } from "./conn.ts";
import type { Conn } from "./conn.ts";
import { bindServer } from "./bind.ts";

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

/** Loads a certificate chain and key (PEM files) into a reusable TLS context. */
export function loadSecureContext(certFile: string, keyFile: string): tls.SecureContext {
  const cert = Deno.readFileSync(certFile);
  const key = Deno.readFileSync(keyFile);
  return tls.createSecureContext({ cert: Buffer.from(cert), key: Buffer.from(key) });
}

/** Binds `host:port` and calls `onConn` for every accepted connection. */
export async function listen(opts: {
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
}): Promise<Listener> {
  const contextOf = opts.secureContext;
  // Implicit TLS wraps the accepted socket like STARTTLS does: in Deno 2.9,
  // tls.createServer({ secureContext }) answers every handshake with an access_denied alert,
  // while new tls.TLSSocket(socket, { isServer, secureContext }) works.
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const conn = new SocketConn(s);
    if (contextOf === undefined) {
      opts.onConn(conn);
      return;
    }
    const secureContext = typeof contextOf === "function" ? contextOf() : contextOf;
    // A failed handshake is one bad peer, not a listener failure.
    conn.startTlsServer({ secureContext, ...(opts.requestCert ? { requestCert: true } : {}) })
      .then(() => opts.onConn(conn), (err: unknown) => {
        conn.destroy();
        opts.onTlsFailure?.(conn.remoteAddress, err);
      });
  });
  const bound = await bindServer(server, opts.host, opts.port);
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
