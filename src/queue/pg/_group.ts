/**
 * Group commit on PostgreSQL: the writes of many sessions (message rows, settlements) that
 * arrive while one transaction is in flight go together into the next one, pipelined on one
 * connection, so ingest pays one round trip and one WAL flush per group, not per message.
 * A waiter resolves only after the COMMIT holding its writes returned (synchronous_commit on).
 * When a group fails, each of its writes is retried alone so that one bad write fails only
 * itself. A group made only of `normal` writes (settlements) commits with
 * `SET LOCAL synchronous_commit = off`, the counterpart of SQLite's synchronous=NORMAL
 * (src/queue/_group_tx.ts): a crash of the server may lose the latest of them (the message is
 * sent again), never a message; any `full` write in the group makes it a synchronous commit.
 */
import { setImmediate } from "node:timers";
import type { CommitLevel } from "../_group_tx.ts";
import type { Sql, Tx } from "./connect.ts";

/** Statements of one write, run inside the group's transaction. */
export type GroupWrite = (tx: Tx) => Promise<unknown>;

interface Pending {
  readonly write: GroupWrite;
  readonly level: CommitLevel;
  resolve(): void;
  reject(err: unknown): void;
}

/** The group transaction schedule. */
export class PgGroupCommit {
  readonly #sql: Sql;
  readonly #onCommit: () => void;
  #pending: Pending[] = [];
  #isScheduled = false;
  #inFlight: Promise<void> | undefined;

  constructor(sql: Sql, onCommit: () => void = () => {}) {
    this.#sql = sql;
    this.#onCommit = onCommit;
  }

  /**
   * Runs `write` in the next group transaction; resolves once that transaction committed
   * (`normal`: possibly without waiting for the WAL flush, see above).
   */
  run(write: GroupWrite, level: CommitLevel = "full"): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ write, level, resolve, reject });
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
      this.#inFlight = this.#flush().finally(() => {
        this.#inFlight = undefined;
        if (this.#pending.length > 0) this.#schedule();
      });
    });
  }

  async #flush(): Promise<void> {
    const group = this.#pending;
    this.#pending = [];
    if (group.length === 0) return;
    try {
      // postgres.js pipelines the SET ahead of the writes on the transaction's connection.
      await this.#sql.begin((tx) =>
        Promise.all([relax(tx, group), ...group.map((p) => p.write(tx))])
      );
      this.#onCommit();
      for (const p of group) p.resolve();
      return;
    } catch (err) {
      if (group.length === 1) {
        group[0]?.reject(err);
        return;
      }
    }
    for (const p of group) {
      try {
        await this.#sql.begin((tx) => Promise.all([relax(tx, [p]), p.write(tx)]));
        this.#onCommit();
        p.resolve();
      } catch (err) {
        p.reject(err);
      }
    }
  }
}

/** Asynchronous commit for a transaction of `normal` writes only. */
async function relax(tx: Tx, group: readonly Pending[]): Promise<void> {
  if (group.every((p) => p.level === "normal")) await tx`SET LOCAL synchronous_commit = off`;
}
