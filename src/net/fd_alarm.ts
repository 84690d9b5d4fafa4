/**
 * Running out of file descriptors (EMFILE, or ENFILE for the whole system), told once: a flood
 * past `ulimit -n` fails every accept (Deno.listen retries each 100 ms, listener.ts) and would
 * otherwise write nothing, or a line per failure. One `fd_exhausted` line starts an episode
 * (error: mail is not being taken); the episode ends at the next connection accepted or the next
 * probe that gets a descriptor, with one `fd_recovered` line (how many failures, how long).
 * Episodes that come back within LOG_INTERVAL_MS of the last line are counted into the next
 * line instead of logged each.
 */
import type { Logger } from "../observe/log.ts";

/** At most one `fd_exhausted` line per this long. */
export const LOG_INTERVAL_MS = 60_000;

/** Whether `err` says the process (EMFILE) or the system (ENFILE) has no descriptor left. */
export function isOutOfDescriptors(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { code?: unknown; message?: unknown };
  if (e.code === "EMFILE" || e.code === "ENFILE") return true;
  return typeof e.message === "string" && /too many open files|os error 2[34]\b/i.test(e.message);
}

/** The descriptor state of one process, shared by its listeners. */
export class FdAlarm {
  readonly #log: Logger;
  readonly #now: () => number;
  /** When the episode under way started (undefined: none). */
  #since: number | undefined;
  /** Whether the episode under way was logged (its end is then logged too). */
  #isLogged = false;
  /** Failures since the last `fd_exhausted` line. */
  #failures = 0;
  #lastLine = Number.NEGATIVE_INFINITY;

  constructor(log: Logger, now: () => number = Date.now) {
    this.#log = log;
    this.#now = now;
  }

  /** Something failed: true if for want of a descriptor (then noted). */
  failed(where: string, err: unknown): boolean {
    if (!isOutOfDescriptors(err)) return false;
    this.#failures++;
    const now = this.#now();
    if (this.#since !== undefined) return true;
    this.#since = now;
    this.#isLogged = now - this.#lastLine >= LOG_INTERVAL_MS;
    if (this.#isLogged) {
      this.#lastLine = now;
      this.#log.error("fd_exhausted", {
        where,
        error: String(err),
        failures: this.#failures,
        action: "connections wait in the backlog: raise the descriptor limit (systemd " +
          "LimitNOFILE, ulimit -n) or lower smtp.max_connections",
      });
      this.#failures = 0;
    }
    return true;
  }

  /** A descriptor was had (a connection accepted, a probe): the episode, if any, is over. */
  ok(): void {
    if (this.#since === undefined) return;
    const ms = this.#now() - this.#since;
    this.#since = undefined;
    if (!this.#isLogged) return;
    this.#log.warn("fd_recovered", { failures: this.#failures, duration_ms: ms });
    this.#failures = 0;
  }
}
