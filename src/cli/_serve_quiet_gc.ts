/**
 * Gives memory back once `serve` is quiet. V8 keeps the heap it grew for a burst (a bulk
 * ingest, start-up's module compilation and migrations) committed and resident long after the
 * objects died: its own memory reducer rarely runs in a process that only waits on sockets.
 * When no session has been open for a while after some activity, one memory-reducing full GC
 * (V8's "last resort" flavour: compacts, releases the free pages, drops compiled code nobody
 * runs) returns it (issue 13: about 3 MB at idle after start-up).
 *
 * It needs `gc`, which V8 installs only with --expose-gc (deno.json's start and compile tasks,
 * the README's run command); without it nothing is collected and nothing else changes. A
 * collection is one pause of a few milliseconds while nobody is connected; the next session
 * may compile again a function whose code was dropped (a fraction of a millisecond each).
 */

import type { Logger } from "../observe/log.ts";

/** How long serve must stay without a session before the collection. */
export const QUIET_MS = 2_000;

/** V8's full, memory-reducing collection as --expose-gc installs it. */
export type FullCollect = () => void;

/** The memory-reducing full collection, if --expose-gc installed `gc`. */
export function exposedFullGc(): FullCollect | undefined {
  const gc: unknown = (globalThis as { gc?: unknown }).gc;
  if (typeof gc !== "function") return undefined;
  return () => gc({ type: "major", execution: "sync", flavor: "last-resort" });
}

/**
 * `collect` with one debug line per collection: V8's heap (committed) before and after, in
 * bytes, and how long the pause took.
 */
export function loggedCollect(
  collect: FullCollect | undefined,
  log: Logger,
): FullCollect | undefined {
  if (collect === undefined) return undefined;
  return () => {
    const before = Deno.memoryUsage().heapTotal;
    const t0 = performance.now();
    collect();
    log.debug("memory_collected", {
      heap_before: before,
      heap_after: Deno.memoryUsage().heapTotal,
      ms: Math.round((performance.now() - t0) * 10) / 10,
    });
  };
}

/** Options of `QuietCollector`. */
export interface QuietCollectorOptions {
  /** The collection; undefined: never collect (no --expose-gc). */
  readonly collect: FullCollect | undefined;
  /** True when no session is open. */
  readonly isQuiet: () => boolean;
  readonly quietMs?: number;
  readonly now?: () => number;
}

/**
 * Collects once per quiet period: `busy()` marks activity (a session opened or ended,
 * start-up done); `quietMs` after the last activity, with no session open, it collects once,
 * then waits for the next activity. One timer at most, never keeping the process alive.
 */
export class QuietCollector {
  readonly #collect: FullCollect | undefined;
  readonly #isQuiet: () => boolean;
  readonly #quietMs: number;
  readonly #now: () => number;
  #lastBusyAt = 0;
  #isOwed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #isStopped = false;

  constructor(opts: QuietCollectorOptions) {
    this.#collect = opts.collect;
    this.#isQuiet = opts.isQuiet;
    this.#quietMs = opts.quietMs ?? QUIET_MS;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** Something happened that left garbage: collect once quiet again. */
  busy(): void {
    if (this.#collect === undefined || this.#isStopped) return;
    this.#lastBusyAt = this.#now();
    this.#isOwed = true;
    if (this.#timer === undefined) this.#arm(this.#quietMs);
  }

  /** No further collection (shutdown). */
  stop(): void {
    this.#isStopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => this.#check(), ms);
    Deno.unrefTimer(this.#timer);
  }

  #check(): void {
    this.#timer = undefined;
    if (!this.#isOwed || this.#isStopped || this.#collect === undefined) return;
    const left = this.#lastBusyAt + this.#quietMs - this.#now();
    if (left > 0) {
      this.#arm(left);
      return;
    }
    // A session still open: its end is activity again and arms the timer then.
    if (!this.#isQuiet()) return;
    this.#isOwed = false;
    this.#collect();
  }
}
