/**
 * The waiters of committed group transactions (_group_tx.ts) and the WAL syncs that settle them.
 * With a `WalSync` a COMMIT (synchronous=NORMAL) only writes the WAL; the fsync runs off the
 * event loop (up to `MAX_SYNCS` at once), each covering every COMMIT before it (commits made
 * meanwhile share the next one), and a waiter hears only once a sync that started after its
 * COMMIT has ended. Without one, the connection's own COMMIT (synchronous=FULL) is the sync.
 *
 * The first failed WAL sync is final (as in PostgreSQL): Linux may have dropped the unwritten pages
 * and marked them clean, so a later sync can succeed without writing them. From then on every
 * `full` write, every wait for durability and every `exclusive` transaction fails with that error
 * until the process restarts (recovery then reads only what is really on disk); `normal` writes
 * (settlements, clean-ups of refused messages) still go ahead: they never waited for a sync, and
 * one lost costs a redelivery, never a message.
 */
import { asError, errorText } from "../errors.ts";
import { MAX_SYNCS, type WalSync } from "./_wal_sync.ts";

/** One wait for durability: settled once its COMMIT is on disk, or failed. */
export interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

/** Waiters whose COMMIT returned, and the syncs running for them. */
export class SyncWaiters {
  readonly #sync: WalSync | undefined;
  readonly #syncInline: () => boolean;
  readonly #onBroken: (err: Error) => void;
  /** Committed since the last sync started (a new waiter needs a sync even with nothing open). */
  #isDirty = false;
  /** Waiters whose COMMIT returned, for the next sync. */
  #unsynced: Waiter[] = [];
  /** Waiters of each sync running now. */
  readonly #syncing = new Set<Waiter[]>();
  /** Waiters of the sync started last, while it runs. */
  #newest: Waiter[] | undefined;
  /** close() ran: its own sync settled every waiter, a sync still running no longer counts. */
  #isClosed = false;
  /** The first failed sync (see above); set once, never cleared. */
  #broken: Error | undefined;

  constructor(opts: {
    sync?: WalSync | undefined;
    syncInline?: (() => boolean) | undefined;
    onBroken?: ((err: Error) => void) | undefined;
  }) {
    this.#sync = opts.sync;
    this.#syncInline = opts.syncInline ?? (() => false);
    this.#onBroken = opts.onBroken ?? (() => {});
  }

  /** The error every durable commit fails with since a sync failed; undefined before. */
  get broken(): Error | undefined {
    return this.#broken;
  }

  /** No waiter waits for a sync and none runs. */
  get isQuiet(): boolean {
    return this.#unsynced.length === 0 && this.#syncing.size === 0;
  }

  /** A sync may run on the loop now: there is a WalSync, none runs, and nobody else waits. */
  mayRunInline(): boolean {
    return this.#sync !== undefined && this.#syncing.size === 0 && this.#syncInline();
  }

  /** A COMMIT returned: the next waiter needs a sync that starts after it. */
  committed(): void {
    this.#isDirty = true;
  }

  /** Settles `waiters` once every COMMIT so far is on disk. */
  durable(waiters: Waiter[]): void {
    if (this.#broken !== undefined) {
      for (const w of waiters) w.reject(this.#broken);
      return;
    }
    if (this.#sync === undefined) {
      for (const w of waiters) w.resolve();
      return;
    }
    if (!this.#isDirty) {
      // Nothing committed since the newest sync started: it covers these waiters too.
      if (this.#newest === undefined) { for (const w of waiters) w.resolve(); }
      else this.#newest.push(...waiters);
      return;
    }
    this.#unsynced.push(...waiters);
    if (this.#syncing.size === 0 && this.#syncInline()) {
      try {
        this.syncNow();
      } catch {
        // syncNow() rejected the waiters; the failure is theirs to report.
      }
      return;
    }
    this.#startSync();
  }

  /**
   * Syncs the WAL on this thread (as a COMMIT under synchronous=FULL would) and settles the
   * waiters whose COMMIT returned. For synchronous transactions and close.
   */
  syncNow(): void {
    if (this.#sync === undefined || !this.#isDirty) return;
    const waiters = this.#unsynced;
    this.#unsynced = [];
    if (this.#broken !== undefined) {
      for (const w of waiters) w.reject(this.#broken);
      throw this.#broken;
    }
    this.#isDirty = false;
    try {
      this.#sync.syncNow();
    } catch (cause) {
      this.#isDirty = true;
      const err = this.#breakDown(cause);
      for (const w of waiters) w.reject(err);
      throw err;
    }
    for (const w of waiters) w.resolve();
  }

  /** Syncs on this thread even when a sync running now would cover what was committed. */
  syncAllNow(): void {
    if (this.#sync === undefined) return;
    this.#isDirty = true;
    this.syncNow();
  }

  /** After the last COMMIT: syncs, settles every waiter (also one of a sync still running). */
  close(): void {
    this.#isClosed = true;
    // A sync still running covers its waiters only once it ends: the sync here, on this thread,
    // must cover them too before they are settled (the last COMMIT may just have started one).
    const running = [...this.#syncing];
    this.#syncing.clear();
    this.#newest = undefined;
    if (running.length > 0) this.#isDirty = true;
    try {
      this.syncNow();
    } catch (err) {
      const error = asError(err);
      for (const batch of running) for (const w of batch) w.reject(error);
      this.#sync?.close();
      throw err;
    }
    for (const batch of running) for (const w of batch) w.resolve();
    this.#sync?.close();
  }

  /**
   * Starts a sync for the waiters whose COMMIT returned, unless `MAX_SYNCS` are running (the end
   * of one starts the next). Syncs overlap: a waiter need not wait for a sync that started
   * before its COMMIT, and the file system joins concurrent syncs into one journal commit.
   */
  #startSync(): void {
    const sync = this.#sync;
    if (
      sync === undefined || this.#broken !== undefined || this.#syncing.size >= MAX_SYNCS ||
      this.#unsynced.length === 0
    ) {
      return;
    }
    const batch = this.#unsynced;
    this.#unsynced = [];
    this.#syncing.add(batch);
    this.#newest = batch;
    // Everything committed before this point is covered by this sync.
    this.#isDirty = false;
    const done = () => {
      this.#syncing.delete(batch);
      if (this.#newest === batch) this.#newest = undefined;
    };
    sync.sync().then(
      () => {
        done();
        // A sync that ran beside the one that failed may have ended well on pages never written.
        if (this.#broken !== undefined) { for (const w of batch) w.reject(this.#broken); }
        else for (const w of batch) w.resolve();
      },
      (cause) => {
        done();
        this.#isDirty = true;
        // After close() (whose own sync covered this one's waiters) a sync may fail because its
        // descriptor was closed under it: that says nothing about the disk.
        const err = this.#isClosed ? asError(cause) : this.#breakDown(cause);
        for (const w of batch) w.reject(err);
      },
    ).finally(() => this.#startSync());
  }

  /**
   * Records the first failed sync (see above) and fails the waiters no sync will cover now.
   * Returns the error every waiter of a failed or later sync gets.
   */
  #breakDown(cause: unknown): Error {
    if (this.#broken !== undefined) return this.#broken;
    const err = new Error(
      `Cannot sync queue database: ${errorText(cause)}; ` +
        "every later message is refused until serve is restarted",
    );
    this.#broken = err;
    const unsynced = this.#unsynced;
    this.#unsynced = [];
    for (const w of unsynced) w.reject(err);
    try {
      this.#onBroken(err);
    } catch {
      // Reporting must not keep the waiters from hearing.
    }
    return err;
  }
}
