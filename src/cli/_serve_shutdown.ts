/**
 * How `serve` ends its sessions on SIGTERM/SIGINT: a session waiting for a command (idle)
 * hears `421 4.3.2` and is closed at once, also one that becomes idle during the grace; a
 * busy one (a transaction, a drain) gets the grace and is then cut. Bounded whatever the peers
 * do (a silent client, one that said STARTTLS and went quiet): grace + CUT_WAIT_MS at most.
 */
import type { Conn } from "../net/conn.ts";
import { formatReply, reply } from "../wire/reply.ts";
import type { SessionSet } from "./_serve_sessions.ts";
import type { Logger } from "../observe/log.ts";

/** After the grace, how long cut sessions get to notice before serve goes on without them. */
export const CUT_WAIT_MS = 500;
/** How often idle sessions are looked for during the grace. */
const SWEEP_INTERVAL_MS = 200;
/** Deadline of the 421 write (a peer that does not read is closed anyway). */
const GOODBYE_WRITE_TIMEOUT_MS = 500;

const SHUTTING_DOWN = formatReply(reply(421, "4.3.2", "Service shutting down, try again later"));

/** Ends every session within `graceMs` + CUT_WAIT_MS; returns how many busy ones were cut. */
export async function endSessions(sessions: SessionSet, graceMs: number): Promise<number> {
  const told = new Set<Conn>();
  const sweep = () => {
    for (const conn of sessions.idle()) {
      if (told.has(conn)) continue;
      told.add(conn);
      void sayGoodbye(conn);
    }
  };
  sweep();
  const timer = setInterval(sweep, SWEEP_INTERVAL_MS);
  try {
    return await sessions.drain(graceMs, CUT_WAIT_MS);
  } finally {
    clearInterval(timer);
  }
}

async function sayGoodbye(conn: Conn): Promise<void> {
  try {
    await conn.write(SHUTTING_DOWN, { flush: true, timeoutMs: GOODBYE_WRITE_TIMEOUT_MS });
  } catch {
    // Gone or not reading: closing is all that is left.
  } finally {
    conn.destroy();
  }
}

/** Waits for `p`, but no longer than `ms`. */
export async function withinMs(p: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([p, new Promise<void>((r) => timer = setTimeout(r, ms))]);
  } finally {
    clearTimeout(timer);
  }
}

/** serve's signals from its first moment on (`takeStartSignals`). */
export interface StartSignals {
  /** What SIGHUP does from now on (until then: logged as ignored, "still starting"). */
  setHangupHandler(handler: () => void): void;
  /**
   * From now on the first SIGTERM or SIGINT settles the promise (serve stops within its grace)
   * instead of ending start-up at once.
   */
  stopRequested(): Promise<Deno.Signal>;
  /** Removes every listener taken here (at the end of serve). */
  release(): void;
}

/**
 * Takes serve's signals before anything else, each listener once for the whole run. SIGHUP's
 * default action ends the process (exit 129, which systemd's Restart=on-failure takes for a
 * clean stop): it is logged as ignored until serve can reload. SIGTERM/SIGINT before serve waits
 * for them (`stopRequested`: while it opens the queue, which a silent database can hold for its
 * deadlines, and binds its listeners) end it at once with exit 0, as after start-up: nothing has
 * been acknowledged yet, and the signal's default (exit 143 or 130) is a failure to a script or
 * a supervisor.
 */
export function takeStartSignals(log: Logger): StartSignals {
  let onHangup = () => log.info("reload_ignored", { reason: "still starting" });
  let onStop = (signal: Deno.Signal): void => {
    log.info("stopping", { signal, during: "start-up" });
    Deno.exit(0);
  };
  const listeners = (["SIGHUP", "SIGTERM", "SIGINT"] as const).map((signal) => {
    const listener = () => signal === "SIGHUP" ? onHangup() : onStop(signal);
    Deno.addSignalListener(signal, listener);
    return { signal, listener };
  });
  return {
    setHangupHandler: (handler) => onHangup = handler,
    stopRequested: () =>
      new Promise((resolve) => {
        let isStopping = false;
        onStop = (signal) => {
          if (isStopping) return;
          isStopping = true;
          resolve(signal);
        };
      }),
    release: () => {
      for (const { signal, listener } of listeners) Deno.removeSignalListener(signal, listener);
    },
  };
}
