/**
 * Group commit on PostgreSQL: the writes of many sessions (message rows, settlements) that
 * arrive while one transaction is in flight go together into the next one, pipelined on one
 * connection, so ingest pays one round trip and one WAL flush per group, not per message.
 * A waiter resolves only after the COMMIT holding its writes returned (synchronous_commit on).
 * When a group fails on a statement, each of its writes is retried alone so that one bad
 * write fails only itself; when it lost its connection, all of them fail at once. A group made
 * only of `normal` writes (settlements) commits with `SET LOCAL synchronous_commit = off`, the
 * counterpart of SQLite's synchronous=NORMAL (src/queue/_group_tx.ts): a crash of the server
 * may lose the latest of them (the message is sent again), never a message; any `full` write
 * in the group makes it a synchronous commit.
 *
 * Every write settles within a deadline (`deadlineMs`, counted from the moment it is asked).
 * While the database cannot be reached, a pool connection may wait out postgres.js's reconnect
 * backoff and then its connect timeout, or sit on a TCP connection that a stopping server
 * accepted and never answers; the session behind the write must still answer 4xx in time. A
 * group still in flight at the deadline no longer holds back the next one. A write past its
 * deadline that has not run yet never runs, and one whose statements are running rolls its
 * transaction back; only one whose COMMIT was already sent may still commit (its sender was
 * told 4xx and sends it again: a duplicate, never a loss).
 */
import { setImmediate } from "node:timers";
import type { CommitLevel } from "../_group_tx.ts";
import type { Sql, Tx } from "./connect.ts";
import { dropWhenSilent, withOnBegin } from "./_deadline.ts";
import { isConnectionLoss } from "./_errors.ts";

/** How long a write may wait for its COMMIT before it fails (default of `deadlineMs`). */
export const GROUP_DEADLINE_MS = 10_000;

/** Statements of one write, run inside the group's transaction. */
export type GroupWrite = (tx: Tx) => Promise<unknown>;

interface Pending {
  readonly write: GroupWrite;
  readonly level: CommitLevel;
  /** Settled (committed, failed or past its deadline): nothing more to do for it. */
  isOver: boolean;
  /** Set while its statements run in a transaction whose COMMIT was not sent yet. */
  onDeadline?: (() => void) | undefined;
  resolve(): void;
  reject(err: unknown): void;
}

/** The group transaction schedule. */
export class PgGroupCommit {
  readonly #sql: Sql;
  readonly #onCommit: () => void;
  readonly #deadlineMs: number;
  readonly #statementMs: number;
  #pending: Pending[] = [];
  #isScheduled = false;
  #inFlight: Promise<void> | undefined;
  /** Drops the connection of the transaction in flight, when it stalls past the deadline. */
  #drop: (() => void) | undefined;

  /**
   * `statementMs`: the longest a statement may run on `sql` (its `statement_timeout`), when
   * above `deadlineMs`: a BEGIN's connection is dropped only after silence longer than both.
   */
  constructor(
    sql: Sql,
    onCommit: () => void = () => {},
    deadlineMs = GROUP_DEADLINE_MS,
    statementMs = deadlineMs,
  ) {
    this.#sql = sql;
    this.#onCommit = onCommit;
    this.#deadlineMs = deadlineMs;
    this.#statementMs = Math.max(deadlineMs, statementMs);
  }

  /**
   * Runs `write` in the next group transaction; resolves once that transaction committed
   * (`normal`: possibly without waiting for the WAL flush, see above); rejects when it failed
   * or did not commit within the deadline.
   */
  run(write: GroupWrite, level: CommitLevel = "full"): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        p.onDeadline?.();
        p.reject(new Error(`no COMMIT within ${this.#deadlineMs} ms (database unreachable?)`));
      }, this.#deadlineMs);
      const p: Pending = {
        write,
        level,
        isOver: false,
        resolve: () => {
          if (p.isOver) return;
          p.isOver = true;
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          if (p.isOver) return;
          p.isOver = true;
          clearTimeout(timer);
          reject(err);
        },
      };
      this.#pending.push(p);
      this.#schedule();
    });
  }

  /** Resolves when nothing is pending or in flight (close). */
  async drain(): Promise<void> {
    for (let i = 0; i < 1000 && (this.#inFlight !== undefined || this.#isScheduled); i++) {
      await (this.#inFlight ?? new Promise((r) => setImmediate(r)));
    }
  }

  #schedule(): void {
    if (this.#isScheduled || this.#inFlight !== undefined) return;
    this.#isScheduled = true;
    // Next check phase: every session whose data was handled in this loop turn joins.
    setImmediate(() => {
      this.#isScheduled = false;
      // Past the deadline its writes have failed already: the next group goes ahead (on
      // another connection) rather than wait for a transaction the server may never answer.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          // Its connection is dropped: left in the pool, a silent one kept every later
          // transaction sent on it waiting, and a ROLLBACK on it is never answered.
          this.#drop?.();
          resolve();
        }, this.#deadlineMs);
      });
      const inFlight: Promise<void> = Promise.race([this.#flush(), stalled]).finally(() => {
        clearTimeout(timer);
        if (this.#inFlight === inFlight) this.#inFlight = undefined;
        if (this.#pending.length > 0) this.#schedule();
      });
      this.#inFlight = inFlight;
    });
  }

  /**
   * One transaction of `group`'s writes. postgres.js pipelines the SET ahead of the writes on
   * the transaction's connection. A write whose deadline passed while BEGIN waited for a
   * connection is left out; one whose deadline passes while the statements run rolls the
   * transaction back (postgres.js sends COMMIT only once this callback resolved), so a write
   * told it failed is never committed after all; only a COMMIT already sent stays unknown.
   */
  async #transaction(group: readonly Pending[]): Promise<void> {
    let ours: Tx | undefined;
    let begun: unknown;
    let isStalled = false;
    const run: Promise<unknown> = this.#begin(group, (tx) => ours = tx, (conn) => {
      begun = conn;
      // rev13b: a BEGIN sent only after the stall (it waited for a connection) is watched too.
      if (isStalled) dropWhenSilent(conn, run, this.#statementMs);
    });
    // A BEGIN still unanswered may wait behind other callers' queries on its connection (a
    // busy one): that connection is dropped only once silent. One that has answered is this
    // transaction's alone: dropped at once (its ROLLBACK would never be answered).
    const drop = () => {
      isStalled = true;
      if (ours === undefined) dropWhenSilent(begun, run, this.#statementMs);
      else ours.destroyConnection();
    };
    this.#drop = drop;
    try {
      await run;
    } finally {
      // Kept until COMMIT returned: a COMMIT that stalls is dropped too.
      if (this.#drop === drop) this.#drop = undefined;
    }
  }

  #begin(
    group: readonly Pending[],
    onTx: (tx: Tx) => void,
    onBegin: (connection: unknown) => void,
  ): Promise<unknown> {
    return this.#sql.begin(withOnBegin((tx: Tx) => {
      onTx(tx);
      const writes = group.filter((p) => !p.isOver);
      let abort: (err: unknown) => void = () => {};
      const aborted = new Promise<never>((_, reject) => abort = reject);
      for (const p of writes) p.onDeadline = () => abort(new DeadlinePassed());
      const all = Promise.all([relax(tx, writes), ...writes.map((p) => p.write(tx))]);
      return Promise.race([all, aborted]).finally(() => {
        for (const p of writes) p.onDeadline = undefined;
      });
    }, onBegin));
  }

  async #flush(): Promise<void> {
    const group = this.#pending.filter((p) => !p.isOver);
    this.#pending = [];
    if (group.length === 0) return;
    try {
      await this.#transaction(group);
      this.#onCommit();
      for (const p of group) p.resolve();
      return;
    } catch (err) {
      // Retried one by one only when a write may be at fault: after a lost connection each
      // retry would wait for the pool's reconnect in turn and fail the same way.
      if (group.length === 1 || isConnectionLoss(err)) {
        for (const p of group) p.reject(err);
        return;
      }
    }
    for (const p of group) {
      if (p.isOver) continue;
      try {
        await this.#transaction([p]);
        this.#onCommit();
        p.resolve();
      } catch (err) {
        p.reject(err);
      }
    }
  }
}

/** Rolls back a transaction whose write was told it failed, before its COMMIT is sent. */
class DeadlinePassed extends Error {
  constructor() {
    super("a write's deadline passed before COMMIT: rolled back");
  }
}

/** Asynchronous commit for a transaction of `normal` writes only. */
async function relax(tx: Tx, group: readonly Pending[]): Promise<void> {
  if (group.every((p) => p.level === "normal")) await tx`SET LOCAL synchronous_commit = off`;
}
