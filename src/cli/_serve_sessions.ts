/**
 * The sessions a server is running, so shutdown can wait for them for a bounded grace and
 * then cut the rest. Each session's promise is supervised here: a rejection is logged, never
 * unhandled (docs/architecture.md "Conventions").
 */
import type { Conn } from "../net/conn.ts";
import type { Logger } from "../observe/log.ts";

/** Filled in by a session handler: whether it is mid-work (shutdown cuts idle ones at once). */
export interface SessionActivity {
  isBusy: () => boolean;
}

/** Sessions in flight. */
export class SessionSet {
  readonly #running = new Map<Conn, Promise<void>>();
  /** How to ask a session whether it is mid-work (a transaction, a drain). */
  readonly #busy = new Map<Conn, () => boolean>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  get size(): number {
    return this.#running.size;
  }

  /**
   * Supervises `run` for `conn` until it settles. `isBusy` tells shutdown whether the session
   * is mid-work; without it the session counts as busy (it gets the whole grace).
   */
  add(conn: Conn, run: () => Promise<void>, isBusy?: () => boolean): void {
    if (isBusy) this.#busy.set(conn, isBusy);
    const p = (async () => {
      try {
        await run();
      } catch (err) {
        // Handlers catch their own failures; reaching this is a bug worth a log line.
        this.#log.error("session_crashed", { conn: conn.id, reason: errorText(err) });
        conn.destroy();
      } finally {
        this.#running.delete(conn);
        this.#busy.delete(conn);
      }
    })();
    this.#running.set(conn, p);
  }

  /** Connections whose session said it is not mid-work (waiting for a command). */
  idle(): Conn[] {
    return [...this.#running.keys()].filter((c) => this.#busy.get(c)?.() === false);
  }

  /**
   * Waits up to `graceMs` for every session to end, then destroys the connections left and
   * waits (bounded by `cutMs`) for their handlers to notice. Returns how many were cut.
   */
  async drain(graceMs: number, cutMs = 2_000): Promise<number> {
    if (await settlesWithin([...this.#running.values()], graceMs)) return 0;
    const left = [...this.#running.keys()];
    for (const conn of left) conn.destroy();
    await settlesWithin([...this.#running.values()], cutMs);
    return left.length;
  }
}

async function settlesWithin(promises: Promise<void>[], ms: number): Promise<boolean> {
  if (promises.length === 0) return true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([Promise.allSettled(promises).then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
