/**
 * The one admission check of both ports (MX and ODMR): a connection over the limits gets
 * `421 4.7.0` and is closed before any session starts; an ODMR connection evicted for a
 * newcomer gets the same reply. The counting itself is in _serve_limits.ts.
 */
import type { Conn } from "../net/conn.ts";
import type { Logger } from "../observe/log.ts";
import { formatReply, reply } from "../wire/reply.ts";
import type { AdmissionTicket, ConnectionLimiter } from "./_serve_limits.ts";

/** Deadline for the short replies written here. */
const REFUSAL_WRITE_TIMEOUT_MS = 5_000;

const TOO_MANY = reply(421, "4.7.0", "Too many connections, try again later");

/**
 * Admits `conn` or refuses it (logged, `421`, closed: then undefined). With `isEvictable`,
 * the connection may later be closed with the same `421` to make room for a newcomer, until
 * its ticket is marked authenticated.
 */
export async function admitConnection(
  conn: Conn,
  limiter: ConnectionLimiter,
  opts: { readonly log: Logger; readonly proto: "smtp" | "odmr"; readonly isEvictable?: boolean },
): Promise<AdmissionTicket | undefined> {
  const ip = conn.remoteAddress;
  const onEvict = opts.isEvictable
    ? () => {
      opts.log.warn("connection_evicted", {
        proto: opts.proto,
        peer: ip,
        reason: "unauthenticated",
      });
      void writeAndClose(conn);
    }
    : undefined;
  const admission = limiter.tryAcquire(ip, onEvict);
  if (admission.ok) return admission.ticket;
  opts.log.warn("connection_refused", { proto: opts.proto, peer: ip, reason: admission.refusal });
  await writeAndClose(conn);
  return undefined;
}

async function writeAndClose(conn: Conn): Promise<void> {
  try {
    await conn.write(formatReply(TOO_MANY), { flush: true, timeoutMs: REFUSAL_WRITE_TIMEOUT_MS });
  } catch {
    // The peer is gone: nothing more to tell it.
  } finally {
    await conn.close().catch(() => {});
  }
}
