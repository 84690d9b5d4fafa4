/**
 * Small per-user facts the metrics must remember across restarts (the time of the last
 * successful ATRN), plus the trivial query `/healthz` asks the database. Knows nothing of
 * Prometheus; SQL lives here (docs/architecture.md "Conventions"). Uses the caller's connection (no second writer).
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { applyMigrations } from "./db.ts";

/** Schema of the "observe" component, one step per version. */
const MIGRATIONS: readonly string[] = [
  "CREATE TABLE user_state (" +
  "user TEXT PRIMARY KEY, last_atrn_success INTEGER NOT NULL)",
];

/** Per-user state on the shared database handle. */
export class UserStateStore {
  readonly #upsert: StatementSync;
  readonly #all: StatementSync;
  readonly #ping: StatementSync;

  constructor(db: DatabaseSync) {
    applyMigrations(db, "observe", MIGRATIONS);
    this.#upsert = db.prepare(
      "INSERT INTO user_state (user, last_atrn_success) VALUES (?, ?) " +
        "ON CONFLICT(user) DO UPDATE SET last_atrn_success = " +
        "max(last_atrn_success, excluded.last_atrn_success)",
    );
    this.#all = db.prepare("SELECT user, last_atrn_success FROM user_state");
    this.#ping = db.prepare("SELECT 1 AS one");
  }

  /**
   * Records a successful ATRN of `user` at `atMs` (ms since the epoch). Not a transaction of
   * its own: inside the queue's open group transaction it commits with it.
   */
  recordAtrnSuccess(user: string, atMs: number): void {
    this.#upsert.run(user, Math.round(atMs));
  }

  /** Last successful ATRN per user (ms since the epoch), removed users included. */
  lastAtrnSuccesses(): Map<string, number> {
    const out = new Map<string, number>();
    for (const row of this.#all.all()) {
      const { user, last_atrn_success: at } = row;
      if (typeof user === "string" && typeof at === "number") out.set(user, at);
    }
    return out;
  }

  /** Throws when the database does not answer (closed handle, I/O error). */
  ping(): void {
    const row: unknown = this.#ping.get();
    if (typeof row !== "object" || row === null || (row as { one?: unknown }).one !== 1) {
      throw new Error("database did not answer SELECT 1");
    }
  }
}
