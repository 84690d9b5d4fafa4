/**
 * Wires an accepted ODMR-port connection to the provider session (src/odmr/provider.ts)
 * with the listener's settings. One AuthThrottle is shared by every session of the process.
 */
import type { Conn } from "../net/conn.ts";
import type { ListenEntry } from "../config/types.ts";
import type { AuthThrottle } from "../auth/throttle.ts";
import { runProviderSession } from "../odmr/provider.ts";
import { formatReply, reply } from "../wire/reply.ts";
import type { ConnectionLimiter } from "./_serve_limits.ts";
import type { OdmrEvents } from "../odmr/events.ts";
import type { ServeDeps } from "./serve.ts";

/** How long a claimed domain stays leased without renewal (the drain renews every third). */
export const ODMR_LEASE_SECONDS = 300;

/** Runs the provider session for one connection of an `odmr.listen` entry. */
export async function handleOdmrConnection(
  conn: Conn,
  deps: ServeDeps & {
    readonly throttle: AuthThrottle;
    readonly events?: OdmrEvents;
    /** Connection flood defence (smtp.max_connections[_per_ip] apply to this port too). */
    readonly limiter?: ConnectionLimiter;
  },
  entry: ListenEntry,
): Promise<void> {
  const { limiter } = deps;
  const ip = conn.remoteAddress;
  if (limiter) {
    const admission = limiter.tryAcquire(ip);
    if (!admission.ok) {
      deps.log.warn("connection_refused", { proto: "odmr", peer: ip, reason: admission.refusal });
      await conn.write(formatReply(reply(421, "4.7.0", "Too many connections, try again later")), {
        flush: true,
        timeoutMs: 5_000,
      }).catch(() => {});
      await conn.close();
      return;
    }
  }
  try {
    await runSession(conn, deps, entry);
  } finally {
    limiter?.release(ip);
  }
}

async function runSession(
  conn: Conn,
  deps: ServeDeps & { readonly throttle: AuthThrottle; readonly events?: OdmrEvents },
  entry: ListenEntry,
): Promise<void> {
  const { config } = deps;
  await runProviderSession(conn, {
    store: deps.store,
    credentials: deps.credentials,
    throttle: deps.throttle,
    log: deps.log.with({ conn: conn.id, proto: "odmr" }),
    ...(deps.events ? { events: deps.events } : {}),
    options: {
      hostname: config.hostname,
      ...(deps.secureContext && entry.tls !== "implicit"
        ? { secureContext: deps.secureContext }
        : {}),
      requireTls: config.odmr.requireTls,
      // Absent: decided per session (src/odmr/line_records.ts); fetchmail over implicit TLS
      // hangs without it, our own fetch does not need it.
      ...(entry.lineRecords === undefined ? {} : { lineRecords: entry.lineRecords }),
      commandTimeoutMs: config.smtp.timeoutMs,
      leaseSeconds: ODMR_LEASE_SECONDS,
    },
  });
}
