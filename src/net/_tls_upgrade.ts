/**
 * The TLS handshake of a Conn's upgrade (conn.ts, native_conn.ts): node:tls over whatever
 * carries the bytes (a node:net socket, or the Duplex over a Deno.TcpConn in _tcp_duplex.ts),
 * as the server (STARTTLS, implicit TLS) or the client. Deno.startTls is client-only and refuses
 * a pinned self-signed server certificate (CaUsedAsEndEntity), so both roles use node:tls.
 */
import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";

import { ConnClosedError, TimeoutError } from "./conn_types.ts";
import type { TlsClientParams, TlsServerParams, TlsUpgradeResult } from "./conn_types.ts";

export const DEFAULT_TLS_TIMEOUT_MS = 60_000;

/** The TLS server over `raw`; its handshake starts with the client's first bytes. */
export function tlsServerSocket(raw: Duplex, params: TlsServerParams): tls.TLSSocket {
  return new tls.TLSSocket(raw, {
    isServer: true,
    secureContext: params.secureContext,
    ...(params.requestCert ? { requestCert: true, rejectUnauthorized: false } : {}),
  });
}

/** The TLS client over `raw` (it sends its ClientHello at once). May throw synchronously. */
export function tlsClientSocket(raw: Duplex, params: TlsClientParams): tls.TLSSocket {
  const ca = params.ca === undefined
    ? undefined
    : typeof params.ca === "string"
    ? [params.ca]
    : [...params.ca];
  // RFC 6066 §3: SNI carries host names only. For an IP the certificate is still checked
  // against it (checkServerIdentity gets it as `host`), but no server name is sent.
  const name = net.isIP(params.servername) === 0
    ? { servername: params.servername }
    : { host: params.servername };
  return tls.connect({
    socket: raw,
    ...name,
    ...(ca ? { ca } : {}),
    ...(params.cert !== undefined && params.key !== undefined
      ? { cert: params.cert, key: params.key }
      : {}),
    rejectUnauthorized: params.rejectUnauthorized ?? true,
  });
}

/**
 * Waits for `event` ("secure" as the server, "secureConnect" as the client) at most
 * `timeoutMs`. `setAbort` receives a function that fails the handshake at once with a
 * ConnClosedError (destroy() during a handshake: a peer that said STARTTLS and went silent must
 * not hold a shutdown), and `undefined` once the handshake ended either way. On failure
 * `secure` is destroyed.
 */
export function awaitHandshake(
  secure: tls.TLSSocket,
  event: "secure" | "secureConnect",
  timeoutMs: number,
  setAbort: (abort: (() => void) | undefined) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => onError(new TimeoutError("TLS handshake")), timeoutMs);
    const onError = (err: Error) => {
      setAbort(undefined);
      clearTimeout(timer);
      secure.off("error", onError);
      secure.off("end", onGone);
      secure.off("close", onGone);
      secure.off(event, onDone);
      secure.destroy();
      reject(err);
    };
    const onDone = () => {
      setAbort(undefined);
      clearTimeout(timer);
      secure.off("error", onError);
      secure.off("end", onGone);
      secure.off("close", onGone);
      resolve();
    };
    // The peer closed before the handshake was done: the TLS socket only emits "end" (no error),
    // and waiting for the deadline held the descriptor a minute (tls_peer_gone_test.ts).
    const onGone = () => onError(new ConnClosedError("connection closed during TLS"));
    setAbort(onGone);
    secure.once("error", onError);
    secure.once("end", onGone);
    secure.once("close", onGone);
    secure.once(event, onDone);
  });
}

/**
 * Wraps a transport in TLS (`wrap` may throw: a bad option) and waits for the handshake as
 * `awaitHandshake` does; resolves with the TLS socket.
 */
export function startTls(
  wrap: () => tls.TLSSocket,
  event: "secure" | "secureConnect",
  timeoutMs: number,
  setAbort: (abort: (() => void) | undefined) => void,
): Promise<tls.TLSSocket> {
  let secure: tls.TLSSocket;
  try {
    secure = wrap();
  } catch (err) {
    // A synchronous throw here would otherwise escape the caller's promise and hang it.
    return Promise.reject(err);
  }
  return awaitHandshake(secure, event, timeoutMs, setAbort).then(() => secure);
}

/** What a client handshake found. */
export function clientResult(secure: tls.TLSSocket, discardedBytes: number): TlsUpgradeResult {
  return {
    discardedBytes,
    authorized: secure.authorized,
    ...(secure.authorizationError ? { authorizationError: String(secure.authorizationError) } : {}),
  };
}
