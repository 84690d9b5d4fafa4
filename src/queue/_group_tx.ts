/**
 * Group commit over one SQLite connection: writes of many sessions go into one shared open
 * transaction, and one COMMIT makes all of them durable (docs/architecture.md: 10–50 messages per
 * transaction gave 5–8× the rows/s). A waiter is resolved only once the COMMIT that holds its
 * writes is on disk, which is what lets the 250 after DATA go out: with a `WalSync` the COMMIT
 * (synchronous=NORMAL) only writes the WAL and the fsync runs off the event loop (a few at once),
 * each covering every COMMIT before it (commits made meanwhile share the next one); without
 * one, the connection's own COMMIT (synchronous=FULL) is the sync. The waiters after COMMIT,
 * the syncs and the first failed sync (final until restart) are _sync_waiters.ts's.
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
 */
import { errorText } from "../errors.ts";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { clearImmediate, setImmediate } from "node:timers";
import { inImmediateTransaction } from "./db.ts";
import { SyncWaiters, type Waiter } from "./_sync_waiters.ts";
import type { WalSync } from "./_wal_sync.ts";

/** How a transaction is committed: `full` is on disk before its waiters hear, `normal` not. */
export type CommitLevel = "full" | "normal";

/** How long chunk rows may sit in the open transaction when nobody waits for durability. */
const LAZY_COMMIT_MS = 100;

/** Something whose rows sit in the open transaction and must hear when they are lost. */
export interface TxParticipant {
  /** The transaction holding this participant's rows was rolled back. */
  txFailed(err: Error): void;
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
  readonly #syncs: SyncWaiters;
  /** SAVEPOINT and RELEASE of every write, prepared once (not parsed per call). */
  readonly #savepoint: StatementSync;
  readonly #release: StatementSync;
  #isOpen = false;
  /** Level of the open transaction. */
  #level: CommitLevel = "full";
  #waiters: Waiter[] = [];
  #participants = new Set<TxParticipant>();
  #scheduled: Scheduled = { kind: "none" };

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
    this.#syncs = new SyncWaiters(opts);
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
    if (this.#syncs.mayRunInline()) this.flushNow();
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
      this.#syncs.isQuiet;
  }

  /** The error every durable commit fails with since a sync failed; undefined before. */
  get broken(): Error | undefined {
    return this.#syncs.broken;
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
    if (level === "full") this.#throwIfBroken();
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
    this.#throwIfBroken();
    this.flushNow();
    const value = inImmediateTransaction(this.#db, fn);
    this.#syncs.committed();
    this.#syncs.syncNow();
    return value;
  }

  /**
   * Syncs the WAL on this thread (as a COMMIT under synchronous=FULL would) and settles the
   * waiters whose COMMIT returned. For synchronous transactions and close.
   */
  syncNow(): void {
    this.#syncs.syncNow();
  }

  /**
   * Commits the shared transaction and syncs the WAL on this thread, even when a sync running
   * now would cover it: everything committed so far is on disk when it returns. Throws after a
   * failed sync.
   */
  syncAllNow(): void {
    this.#throwIfBroken();
    this.flushNow();
    this.#syncs.syncAllNow();
  }

  /** Commits and syncs what is pending, settles every waiter (also one of a sync still running). */
  close(): void {
    this.flushNow();
    this.#syncs.close();
  }

  /** Commits the shared transaction now; its waiters are settled once it is on disk. */
  flushNow(): void {
    this.#cancelScheduled();
    const waiters = this.#waiters;
    const participants = this.#participants;
    this.#waiters = [];
    this.#participants = new Set();
    if (!this.#isOpen) {
      this.#syncs.durable(waiters);
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
    this.#syncs.committed();
    this.#onCommit(level);
    if (level === "normal") {
      // Written to the OS, not synced: settlements need no more (see above).
      for (const w of waiters) w.resolve();
      return;
    }
    this.#syncs.durable(waiters);
  }

  #throwIfBroken(): void {
    const broken = this.#syncs.broken;
    if (broken !== undefined) throw broken;
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
