/**
 * Wires an accepted ODMR-port connection to the provider session (src/odmr/provider.ts)
 * with the listener's settings. One AuthThrottle is shared by every session of the process.
 * Until it authenticates, a connection may be evicted for a newcomer (_serve_limits.ts).
 */
import type { Conn } from "../net/conn.ts";
import type { ListenEntry } from "../config/types.ts";
import type { AuthThrottle } from "../auth/throttle.ts";
import { runProviderSession } from "../odmr/provider.ts";
import type { ConnectionLimiter } from "./_serve_limits.ts";
import { admitConnection } from "./_serve_admission.ts";
import type { OdmrEvents } from "../odmr/events.ts";
import type { ServeDeps } from "./_serve_deps.ts";

/** Runs the provider session for one connection of an `odmr.listen` entry. */
export async function handleOdmrConnection(
  conn: Conn,
  deps: ServeDeps & {
    readonly throttle: AuthThrottle;
    /** Derives SCRAM salts for unknown user names (src/auth/fake_salt_key.ts). */
    readonly fakeSaltKey?: Uint8Array;
    readonly events?: OdmrEvents;
    /** Connection flood defence (smtp.max_connections[_per_ip] apply to this port too). */
    readonly limiter: ConnectionLimiter;
  },
  entry: ListenEntry,
): Promise<void> {
  const { config } = deps;
  const log = deps.log.with({ conn: conn.id, proto: "odmr" });
  const ticket = await admitConnection(conn, deps.limiter, {
    log,
    proto: "odmr",
    isEvictable: true,
  });
  if (ticket === undefined) return;
  try {
    await runProviderSession(conn, {
      store: deps.store,
      credentials: deps.credentials,
      throttle: deps.throttle,
      ...(deps.fakeSaltKey ? { fakeSaltKey: deps.fakeSaltKey } : {}),
      log,
      ...(deps.events ? { events: deps.events } : {}),
      onAuthenticated: () => ticket.markAuthenticated(),
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
        authTimeoutMs: config.odmr.authTimeoutMs,
        drainTimeoutMs: config.odmr.drainTimeoutMs,
        leaseSeconds: config.queue.leaseMs / 1000,
      },
    });
  } finally {
    ticket.release();
  }
}

/** `events`, also calling `onDrain` when an ATRN is accepted. */
export function noticeDrain(events: OdmrEvents, onDrain: () => void): OdmrEvents {
  return {
    atrn: (user, outcome) => {
      if (outcome === "250") onDrain();
      events.atrn(user, outcome);
    },
    authFailure: (mechanism) => events.authFailure(mechanism),
    delivered: (domain) => events.delivered(domain),
    drainFinished: (user, delivered) => events.drainFinished(user, delivered),
  };
}
