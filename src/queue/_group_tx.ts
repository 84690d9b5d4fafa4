/**
 * Group commit over one SQLite connection: writes of many sessions go into one shared open
 * transaction, and one COMMIT makes all of them durable (docs/architecture.md: 10–50 messages per
 * transaction gave 5–8× the rows/s). A waiter is resolved only after the COMMIT that holds its
 * writes returned (WAL + synchronous=FULL: on disk), which is what lets the 250 after DATA go out.
 */
import { errorText } from "../errors.ts";
import type { DatabaseSync } from "node:sqlite";
import { clearImmediate, setImmediate } from "node:timers";

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
  readonly #onCommit: () => void;
  #isOpen = false;
  #waiters: Waiter[] = [];
  #participants = new Set<TxParticipant>();
  #scheduled: Scheduled = { kind: "none" };

  constructor(db: DatabaseSync, onCommit: () => void) {
    this.#db = db;
    this.#onCommit = onCommit;
  }

  /**
   * Runs `fn` inside the shared transaction, in a savepoint so that its failure undoes only
   * its own statements. `participant` is told if the transaction is later rolled back.
   */
  write<T>(participant: TxParticipant | undefined, fn: () => T): T {
    if (!this.#isOpen) {
      // IMMEDIATE takes the write lock now, so a busy database fails here (busy_timeout), not at COMMIT.
      this.#db.exec("BEGIN IMMEDIATE");
      this.#isOpen = true;
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
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const value = fn();
      this.#db.exec("COMMIT");
      return value;
    } catch (err) {
      this.#db.exec("ROLLBACK");
      throw err;
    }
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
    try {
      this.#db.exec("COMMIT");
    } catch (cause) {
      const err = new Error(`Cannot commit queue transaction: ${errorText(cause)}`);
      try {
        this.#db.exec("ROLLBACK");
      } catch {
        // A failed COMMIT may already have rolled back; nothing more to undo.
      }
      for (const p of participants) p.txFailed(err);
      for (const w of waiters) w.reject(err);
      return;
    }
    this.#onCommit();
    for (const w of waiters) w.resolve();
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
