/**
 * What both Conns share and that needs no node: module (NativeConn loads node:tls and its
 * helpers only when TLS starts: a plain connection's start-up stays without them).
 */

/** How many bytes may sit unread before the socket is paused (backpressure). */
export const HIGH_WATER_BYTES = 256 * 1024;
export const DEFAULT_WRITE_TIMEOUT_MS = 5 * 60_000;

/** A connection's addresses: the peer's address at once, the rest read when asked. */
export interface ConnNames {
  readonly remoteAddress: string;
  remotePort(): number;
  local(): { address: string; port: number };
}

/** `::ffff:127.0.0.1` → `127.0.0.1`. */
export function normalizeAddress(addr: string): string {
  return addr.startsWith("::ffff:") && addr.includes(".") ? addr.slice(7) : addr;
}
