/**
 * When SQLite copies the WAL into the database file (its checkpoint). SQLite's own runs inside a
 * COMMIT once the WAL holds `wal_autocheckpoint` pages: on the event loop, in the middle of a
 * burst, copying every page and syncing the WAL and the database (~40 ms every ~150 messages of
 * 100 KB, while every session waits). Here the store checkpoints when it has been quiet for a
 * moment instead: nothing open, nobody waiting for a sync, no COMMIT for `idleMs`, and in serve
 * no session open (a customer's ATRN right after a burst would otherwise meet the copy). A burst is
 * then written to the WAL only while it lasts and copied once it is over, up to what SQLite's own
 * checkpoint allows: that stays the bound of the WAL under load that never pauses
 * (WAL_CHECKPOINT_PAGES).
 *
 * Not in a Worker (#13, measured with bench/ab_ingest.ts and dropped): a PASSIVE checkpoint on a
 * connection of its own copies only up to the snapshot of the store's open transaction, and under
 * load one is nearly always open. SQLite starts the WAL over only after a checkpoint that copied
 * everything ran between a COMMIT and the next BEGIN, that is on the store's connection, with its
 * syncs of the WAL and the database on the loop: 5–30 ms at 10 × 100 KB even when a Worker had
 * copied all but 256 pages (left to the Worker alone, the WAL grew to the fallback bound, 4× these
 * pages, with longer stalls). Paired with this file's checkpoint: 1.01–1.08× msg/s at 10 × 100 KB,
 * 1.03× at 10 × 4 KB, serve +13 MB resident from the Worker's first checkpoint on.
 *
 * Durability does not depend on it: a message is acknowledged once its WAL frames are synced
 * (_wal_sync.ts), and a checkpoint (synchronous=NORMAL) syncs the WAL before it copies and the
 * database file before the WAL is written again from its start.
 */

import type { DatabaseSync } from "node:sqlite";
import { errorText } from "../errors.ts";
import type { Logger } from "../observe/log.ts";
import type { GroupTransaction } from "./_group_tx.ts";

/** Quiet time after the last COMMIT before the store checkpoints. */
export const IDLE_CHECKPOINT_MS = 500;

/** The store's checkpoints (see above). */
export interface StoreCheckpoint {
  /** A group COMMIT went to the WAL. */
  noteCommit(): void;
  /** Now if nobody waits and nobody is connected (maintenance), else once writes pause. */
  soon(): void;
  close(): void;
}

/**
 * SQLite's PASSIVE checkpoint of the store's connection (a reader elsewhere, `queue list`, never
 * blocks it), when writes pause or when asked. Nothing is copied after a failed WAL sync (the
 * WAL may hold pages never written) or after `isClosed`. A failure is logged; the next quiet
 * moment, or SQLite's own checkpoint, copies it.
 */
export function storeCheckpoint(
  db: DatabaseSync,
  opts: {
    log: Logger;
    group: () => GroupTransaction;
    isClosed: () => boolean;
    /** False while the copy should wait (serve: a session is open); default always true. */
    isIdle?: (() => boolean) | undefined;
    idleMs?: number | undefined;
  },
): StoreCheckpoint {
  const statement = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
  const run = () => {
    if (opts.isClosed() || opts.group().broken !== undefined) return;
    try {
      statement.get();
    } catch (err) {
      opts.log.warn("queue_checkpoint_failed", { reason: errorText(err) });
    }
  };
  const isQuiet = () => opts.group().isQuiet && (opts.isIdle?.() ?? true);
  const idle = new IdleCheckpoint({
    run,
    isQuiet,
    ...(opts.idleMs === undefined ? {} : { idleMs: opts.idleMs }),
  });
  return {
    noteCommit: () => idle.noteCommit(),
    soon: () => isQuiet() ? run() : idle.noteCommit(),
    close: () => idle.close(),
  };
}

/**
 * Runs a checkpoint once writes have paused (see above): a timer every `idleMs` while COMMITs
 * are owed one, which checkpoints at the first tick that saw no COMMIT since the one before
 * and finds the store quiet (so after between one and two `idleMs` of quiet), then stops.
 */
export class IdleCheckpoint {
  readonly #run: () => void;
  readonly #isQuiet: () => boolean;
  readonly #idleMs: number;
  /** COMMITs so far, and as many as the last tick saw. */
  #commits = 0;
  #seen = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #isClosed = false;

  constructor(opts: {
    /** Runs the checkpoint (outside any transaction). */
    run: () => void;
    /** True when nothing is open or waiting: a checkpoint now holds nobody up. */
    isQuiet: () => boolean;
    idleMs?: number;
  }) {
    this.#run = opts.run;
    this.#isQuiet = opts.isQuiet;
    this.#idleMs = opts.idleMs ?? IDLE_CHECKPOINT_MS;
  }

  /** A COMMIT went to the WAL (one increment; the timer starts with the first after a checkpoint). */
  noteCommit(): void {
    this.#commits++;
    if (this.#timer !== undefined || this.#isClosed) return;
    this.#seen = this.#commits;
    this.#timer = setInterval(() => this.#tick(), this.#idleMs);
    // A process with nothing else to do (a `queue` command) does not wait for it.
    Deno.unrefTimer(this.#timer);
  }

  /** Stops the timer for good (the store closes; closing checkpoints anyway). */
  close(): void {
    this.#isClosed = true;
    this.#stop();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    if (this.#commits !== this.#seen || !this.#isQuiet()) {
      this.#seen = this.#commits;
      return;
    }
    this.#stop();
    this.#run();
  }
}
