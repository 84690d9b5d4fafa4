/**
 * Group commit over one SQLite connection: writes of many sessions go into one shared open
 * transaction, and one COMMIT makes all of them durable (docs/architecture.md: 10–50 messages per
 * transaction gave 5–8× the rows/s). A waiter is resolved only after the COMMIT that holds its
 * writes returned (WAL + synchronous=FULL: on disk), which is what lets the 250 after DATA go out.
 *
 * Each transaction has a level, fixed when it begins (SQLite refuses to change `synchronous`
 * inside one): `full` (fsync at COMMIT) for every write unless the caller asks for `normal`,
 * which settlements do (WAL + synchronous=NORMAL: the COMMIT is written to the OS, not
 * fsynced; a process crash loses nothing, a power failure may lose the latest settlements,
 * whose messages are then delivered again, never lost). A `full` write meeting an open `normal`
 * transaction commits it first and begins a `full` one, so a `full` write is never committed
 * at `normal`; a `normal` write joins a `full` transaction as it is.
 */
import { errorText } from "../errors.ts";
import type { DatabaseSync } from "node:sqlite";
import { clearImmediate, setImmediate } from "node:timers";
import { inImmediateTransaction } from "./db.ts";

/** How long chunk rows may sit in the open transaction when nobody waits for durability. */
const LAZY_COMMIT_MS = 100;

/** How a transaction is committed: `full` fsyncs at COMMIT, `normal` only writes to the OS. */
export type CommitLevel = "full" | "normal";

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
  #isOpen = false;
  /** Level of the open transaction. */
  #level: CommitLevel = "full";
  /** The connection's `synchronous` (openDatabase sets FULL). */
  #synchronous: CommitLevel = "full";
  #waiters: Waiter[] = [];
  #participants = new Set<TxParticipant>();
  #scheduled: Scheduled = { kind: "none" };

  /** `onCommit` runs right after each group COMMIT (still at that COMMIT's `synchronous`). */
  constructor(db: DatabaseSync, onCommit: (level: CommitLevel) => void) {
    this.#db = db;
    this.#onCommit = onCommit;
  }

  /**
   * Runs `fn` inside the shared transaction, in a savepoint so that its failure undoes only
   * its own statements. `participant` is told if the transaction is later rolled back.
   * `level`: how the transaction holding it must be committed (see above).
   */
  write<T>(participant: TxParticipant | undefined, fn: () => T, level: CommitLevel = "full"): T {
    if (this.#isOpen && this.#level === "normal" && level === "full") this.flushNow();
    if (!this.#isOpen) {
      this.#setSynchronous(level);
      // IMMEDIATE takes the write lock now, so a busy database fails here (busy_timeout), not at COMMIT.
      this.#db.exec("BEGIN IMMEDIATE");
      this.#isOpen = true;
      this.#level = level;
    }
    this.#db.exec("SAVEPOINT group_write");
    let value: T;
    try {
      value = fn();
    } catch (err) {
      this.#db.exec("ROLLBACK TO group_write");
      this.#db.exec("RELEASE group_write");
      this.#schedule("lazy");
      throw err;
    }
    this.#db.exec("RELEASE group_write");
    if (participant !== undefined) this.#participants.add(participant);
    this.#schedule("lazy");
    return value;
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

  /** Runs `fn` in its own transaction, after committing the shared one. */
  exclusive<T>(fn: () => T): T {
    this.flushNow();
    this.#setSynchronous("full");
    return inImmediateTransaction(this.#db, fn);
  }

  /** Commits the shared transaction now and settles every waiter. */
  flushNow(): void {
    this.#cancelScheduled();
    const waiters = this.#waiters;
    const participants = this.#participants;
    this.#waiters = [];
    this.#participants = new Set();
    if (!this.#isOpen) {
      for (const w of waiters) w.resolve();
      return;
    }
    this.#isOpen = false;
    const level = this.#level;
    try {
      this.#db.exec("COMMIT");
    } catch (cause) {
      const err = new Error(`Cannot commit queue transaction: ${errorText(cause)}`);
      try {
        this.#db.exec("ROLLBACK");
      } catch {
        // A failed COMMIT may already have rolled back; nothing more to undo.
      }
      this.#restoreFull();
      for (const p of participants) p.txFailed(err);
      for (const w of waiters) w.reject(err);
      return;
    }
    try {
      this.#onCommit(level);
    } finally {
      this.#restoreFull();
    }
    for (const w of waiters) w.resolve();
  }

  /** Sets the connection's `synchronous` (outside a transaction only). */
  #setSynchronous(level: CommitLevel): void {
    if (this.#synchronous === level) return;
    this.#db.exec(`PRAGMA synchronous = ${level === "full" ? "FULL" : "NORMAL"}`);
    this.#synchronous = level;
  }

  /**
   * Back to FULL after a `normal` COMMIT, so that statements outside the group (and the next
   * `full` transaction) are fsynced. Should it fail, the next `full` BEGIN sets it again.
   */
  #restoreFull(): void {
    try {
      this.#setSynchronous("full");
    } catch {
      // Outside a transaction this fails only on a closed connection; see above.
    }
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
