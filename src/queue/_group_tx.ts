/**
 * Group commit over one SQLite connection: writes of many sessions go into one shared open
 * transaction, and one COMMIT makes all of them durable (docs/architecture.md: 10–50 messages per
 * transaction gave 5–8× the rows/s). A waiter is resolved only once the COMMIT that holds its
 * writes is on disk, which is what lets the 250 after DATA go out: with a `WalSync` the COMMIT
 * (synchronous=NORMAL) only writes the WAL and the fsync runs off the event loop (a few at once),
 * each covering every COMMIT before it (commits made meanwhile share the next one); without
 * one, the connection's own COMMIT (synchronous=FULL) is the sync.
 *
 * Each transaction has a level: `full` as soon as it holds one write that is not `normal`;
 * `normal` while it holds only writes that ask for it, which settlements do: their COMMIT is
 * written to the OS, not synced (a process crash loses nothing, a power failure may lose the
 * latest settlements, whose messages are then delivered again, never lost), and their waiters
 * do not wait for a sync. A `full` write meeting an open `normal` transaction raises it to
 * `full`: the settlements in it then wait for its sync too, and a `full` write is never
 * acknowledged unsynced. The level matters only with a `WalSync`: without one (an in-memory
 * database, or a file SQLite could not put in WAL mode) the connection stays at
 * `synchronous=FULL` (openDatabase), so every COMMIT is its own sync, settlements included.
 *
 * The first failed WAL sync is final (as in PostgreSQL): Linux may have dropped the unwritten pages
 * and marked them clean, so a later sync can succeed without writing them. From then on every
 * `full` write, every wait for durability and every `exclusive` transaction fails with that error
 * until the process restarts (recovery then reads only what is really on disk); `normal` writes
 * (settlements, clean-ups of refused messages) still go ahead: they never waited for a sync, and
 * one lost costs a redelivery, never a message.
 */
import { asError, errorText } from "../errors.ts";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { clearImmediate, setImmediate } from "node:timers";
import { inImmediateTransaction } from "./db.ts";
import { MAX_SYNCS, type WalSync } from "./_wal_sync.ts";

/** How a transaction is committed: `full` is on disk before its waiters hear, `normal` not. */
export type CommitLevel = "full" | "normal";

/** How long chunk rows may sit in the open transaction when nobody waits for durability. */
const LAZY_COMMIT_MS = 100;

/** Something whose rows sit in the open transaction and must hear when they are lost. */
export interface TxParticipant {
  /** The transaction holding this participant's rows was rolled back. */
  txFailed(err: Error): void;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

/**
 * An urgent COMMIT runs in the next check phase (setImmediate): every session whose data event
 * was handled in the same loop turn shares it. Not setTimeout(0), which waits ~2 ms in Deno
 * (measured) — that alone halved single-sender ingest.
 */
type Scheduled =
  | { kind: "none" }
  | { kind: "lazy"; timer: ReturnType<typeof setTimeout> }
  | { kind: "urgent"; immediate: ReturnType<typeof setImmediate> };

/** The shared transaction and its COMMIT schedule. */
export class GroupTransaction {
  readonly #db: DatabaseSync;
  readonly #onCommit: (level: CommitLevel) => void;
  readonly #sync: WalSync | undefined;
  readonly #syncInline: () => boolean;
  /** SAVEPOINT and RELEASE of every write, prepared once (not parsed per call). */
  readonly #savepoint: StatementSync;
  readonly #release: StatementSync;
  #isOpen = false;
  /** Level of the open transaction. */
  #level: CommitLevel = "full";
  #waiters: Waiter[] = [];
  #participants = new Set<TxParticipant>();
  #scheduled: Scheduled = { kind: "none" };
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
  readonly #onBroken: (err: Error) => void;

  constructor(
    db: DatabaseSync,
    opts: {
      /** Runs right after each group COMMIT, with its level. */
      onCommit: (level: CommitLevel) => void;
      /** Syncs COMMITs (synchronous=NORMAL) off the loop; none: each COMMIT is its own sync. */
      sync?: WalSync | undefined;
      /** True when a sync may run on the loop instead (nobody else waits). Default: never. */
      syncInline?: () => boolean;
      /** Called once, at the first failed sync (the store logs it). */
      onBroken?: (err: Error) => void;
    },
  ) {
    this.#db = db;
    this.#onCommit = opts.onCommit;
    this.#sync = opts.sync;
    this.#syncInline = opts.syncInline ?? (() => false);
    this.#onBroken = opts.onBroken ?? (() => {});
    this.#savepoint = db.prepare("SAVEPOINT group_write");
    this.#release = db.prepare("RELEASE group_write");
  }

  /**
   * Runs `fn` inside the shared transaction, in a savepoint so that its failure undoes only
   * its own statements. `participant` is told if the transaction is later rolled back.
   * `level`: how the transaction holding it must be committed (see above).
   */
  write<T>(participant: TxParticipant | undefined, fn: () => T, level: CommitLevel = "full"): T {
    try {
      return this.#write(participant, fn, level);
    } finally {
      this.#schedule("lazy");
    }
  }

  /**
   * `write` (at `full`) then `whenDurable`, with no lazy timer armed between (a message's last
   * write) and no savepoint: after one, SQLite copies each page a write changes into a journal,
   * ~15 of a 4 KB message's ~60 µs of inserts (#13). Each statement of `fn` is atomic; if one
   * throws, `undo` removes what those before it wrote, and only that (a failed insert of a key
   * that exists must not remove that row). If `undo` fails too, or SQLite rolled back on its own
   * (SQLITE_FULL, IOERR), all of the open transaction fails now, as after a failed COMMIT.
   */
  writeDurable(
    participant: TxParticipant | undefined,
    fn: () => void,
    undo: () => void,
  ): Promise<void> {
    try {
      this.#begin("full");
      try {
        fn();
      } catch (err) {
        this.#undo(undo, err);
        throw err;
      }
      if (participant !== undefined) this.#participants.add(participant);
    } catch (err) {
      // The transaction may hold other writes (or only its BEGIN): it must still be committed.
      this.#schedule("lazy");
      throw err;
    }
    const durable = this.whenDurable();
    // Alone (nobody else is there to share the COMMIT): commit and sync now, not a turn later.
    if (this.#sync !== undefined && this.#syncing.size === 0 && this.#syncInline()) this.flushNow();
    return durable;
  }

  /** Runs `undo` after a failed write; if it fails, or SQLite rolled back, all of it fails. */
  #undo(undo: () => void, cause: unknown): void {
    let reason = "SQLite rolled the transaction back";
    if (this.#db.isTransaction) {
      try {
        return undo();
      } catch (err) {
        reason = `cannot undo it: ${errorText(err)}`;
      }
    }
    const waiters = this.#waiters;
    const participants = this.#participants;
    this.#waiters = [];
    this.#participants = new Set();
    this.#isOpen = false;
    const why = `${errorText(cause)}; ${reason}`;
    this.#rollBack(new Error(`Queue write failed and rolled back (${why})`), waiters, participants);
  }

  /** ROLLBACK (unless SQLite did already); the writes and waiters of that transaction fail. */
  #rollBack(err: Error, waiters: Waiter[], participants: Set<TxParticipant>): void {
    try {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
    } catch {
      // Nothing more to undo.
    }
    for (const p of participants) p.txFailed(err);
    for (const w of waiters) w.reject(err);
  }

  /** Nothing open, nothing scheduled, no waiter and no sync running: nobody would wait now. */
  get isQuiet(): boolean {
    return !this.#isOpen && this.#scheduled.kind === "none" && this.#waiters.length === 0 &&
      this.#unsynced.length === 0 && this.#syncing.size === 0;
  }

  /** The error every durable commit fails with since a sync failed; undefined before. */
  get broken(): Error | undefined {
    return this.#broken;
  }

  #write<T>(participant: TxParticipant | undefined, fn: () => T, level: CommitLevel): T {
    this.#begin(level);
    this.#savepoint.run();
    let value: T;
    try {
      value = fn();
    } catch (err) {
      // If SQLite rolled back on its own (SQLITE_FULL, IOERR), all of the transaction fails.
      this.#undo(() => this.#db.exec("ROLLBACK TO group_write; RELEASE group_write"), err);
      throw err;
    }
    this.#release.run();
    if (participant !== undefined) this.#participants.add(participant);
    return value;
  }

  /** Opens the shared transaction if needed, at `level` or raised to it. */
  #begin(level: CommitLevel): void {
    if (level === "full" && this.#broken !== undefined) throw this.#broken;
    // Open here but gone in SQLite: fail its writes, never write on in autocommit.
    if (this.#isOpen && !this.#db.isTransaction) this.#undo(() => {}, "transaction gone");
    if (!this.#isOpen) {
      // IMMEDIATE takes the write lock now, so a busy database fails here (busy_timeout), not at COMMIT.
      this.#db.exec("BEGIN IMMEDIATE");
      this.#isOpen = true;
      this.#level = level;
    } else if (level === "full") {
      // Should this write be undone (its savepoint or its undo), the transaction stays `full`:
      // stricter than needed, never looser.
      this.#level = "full";
    }
  }

  /** Stops telling `participant` about rollbacks (it aborted or finished). */
  forget(participant: TxParticipant): void {
    this.#participants.delete(participant);
  }

  /** Resolves after the next COMMIT (scheduled with setImmediate so concurrent callers share it). */
  whenDurable(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
    });
    this.#schedule("urgent");
    return done;
  }

  /** Runs `fn` in its own transaction, after committing the shared one; on disk when it returns. */
  exclusive<T>(fn: () => T): T {
    if (this.#broken !== undefined) throw this.#broken;
    this.flushNow();
    const value = inImmediateTransaction(this.#db, fn);
    this.#isDirty = true;
    this.syncNow();
    return value;
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

  /**
   * Commits the shared transaction and syncs the WAL on this thread, even when a sync running
   * now would cover it: everything committed so far is on disk when it returns. Throws after a
   * failed sync.
   */
  syncAllNow(): void {
    if (this.#broken !== undefined) throw this.#broken;
    this.flushNow();
    if (this.#sync === undefined) return;
    this.#isDirty = true;
    this.syncNow();
  }

  /** Commits and syncs what is pending, settles every waiter (also one of a sync still running). */
  close(): void {
    this.flushNow();
    this.#isClosed = true;
    // A sync still running covers its waiters only once it ends: the sync here, on this thread,
    // must cover them too before they are settled (flushNow may just have started one).
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

  /** Commits the shared transaction now; its waiters are settled once it is on disk. */
  flushNow(): void {
    this.#cancelScheduled();
    const waiters = this.#waiters;
    const participants = this.#participants;
    this.#waiters = [];
    this.#participants = new Set();
    if (!this.#isOpen) {
      this.#durable(waiters);
      return;
    }
    this.#isOpen = false;
    const level = this.#level;
    try {
      this.#db.exec("COMMIT");
    } catch (cause) {
      const err = new Error(`Cannot commit queue transaction: ${errorText(cause)}`);
      this.#rollBack(err, waiters, participants);
      return;
    }
    this.#isDirty = true;
    this.#onCommit(level);
    if (level === "normal") {
      // Written to the OS, not synced: settlements need no more (see above).
      for (const w of waiters) w.resolve();
      return;
    }
    this.#durable(waiters);
  }

  /** Settles `waiters` once every COMMIT so far is on disk. */
  #durable(waiters: Waiter[]): void {
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

  #schedule(kind: "lazy" | "urgent"): void {
    if (this.#scheduled.kind === "urgent") return;
    if (this.#scheduled.kind === "lazy" && kind === "lazy") return;
    this.#cancelScheduled();
    this.#scheduled = kind === "urgent"
      ? { kind, immediate: setImmediate(() => this.flushNow()) }
      : { kind, timer: setTimeout(() => this.flushNow(), LAZY_COMMIT_MS) };
  }

  #cancelScheduled(): void {
    const s = this.#scheduled;
    if (s.kind === "lazy") clearTimeout(s.timer);
    else if (s.kind === "urgent") clearImmediate(s.immediate);
    this.#scheduled = { kind: "none" };
  }
}
