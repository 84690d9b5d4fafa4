/**
 * Leases whose release failed (PostgreSQL down, restarting or silent while a drain or an
 * outbound batch ended), released again in the background: after 1 s, then at pauses doubling
 * to 30 s, until one succeeds or the lease would have run out by itself. Left alone, such a
 * lease kept its domain busy for the rest of `lease_time` (5 minutes by default) after the
 * database came back: the customer's ATRN got 451 on every node, the outbound worker left the
 * destination alone. The release deletes the lease's rows by owner (one session's), so it
 * never touches a lease another session took since.
 */
import type { LogFields, Logger } from "../../observe/log.ts";

const FIRST_PAUSE_MS = 1_000;
const LONGEST_PAUSE_MS = 30_000;

/** The store's pending releases; `close()` stops them. */
export class PendingReleases {
  readonly #log: Logger;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #isClosed = false;

  constructor(log: Logger) {
    this.#log = log;
  }

  /**
   * Runs `release` again until it succeeds or `until` (performance.now() time: when the lease
   * runs out by itself) has passed; `fields` name the lease in the log.
   */
  add(release: () => Promise<void>, until: number, fields: LogFields): void {
    const attempt = (pause: number) => {
      if (this.#isClosed || performance.now() + pause >= until) return;
      const timer = setTimeout(async () => {
        this.#timers.delete(timer);
        if (this.#isClosed) return;
        try {
          await release();
          this.#log.info("lease_released_late", fields);
        } catch {
          attempt(Math.min(pause * 2, LONGEST_PAUSE_MS));
        }
      }, pause);
      this.#timers.add(timer);
    };
    attempt(FIRST_PAUSE_MS);
  }

  close(): void {
    this.#isClosed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}
