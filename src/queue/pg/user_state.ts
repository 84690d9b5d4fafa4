/**
 * The last successful ATRN per user on PostgreSQL (what src/queue/user_state.ts keeps in the
 * SQLite file), so that the metric survives restarts and is the same on every node. Writes are
 * fire-and-forget: losing one only loses the restart-survival of one timestamp. Both the load
 * and the writes answer within the calls' deadline (_deadline.ts): a write left on a silent
 * connection kept it, and serve's start waited for good on the load.
 */
import type { Logger } from "../../observe/log.ts";
import type { Sql } from "./connect.ts";
import { PG_CALL_DEADLINE_MS, within } from "./_deadline.ts";

/** Per-user state on PostgreSQL. */
export class PgUserState {
  readonly #sql: Sql;
  readonly #log: Logger;
  readonly #last: Map<string, number>;
  readonly #deadlineMs: number;

  private constructor(sql: Sql, log: Logger, last: Map<string, number>, deadlineMs: number) {
    this.#sql = sql;
    this.#log = log;
    this.#last = last;
    this.#deadlineMs = deadlineMs;
  }

  /** Loads the stored timestamps. */
  static async open(
    sql: Sql,
    log: Logger,
    deadlineMs: number = PG_CALL_DEADLINE_MS,
  ): Promise<PgUserState> {
    const rows = await within(
      sql`SELECT "user", last_atrn_success::float8 AS at FROM user_state`,
      deadlineMs,
      "ATRN timestamps",
    );
    const last = new Map(rows.map((r) => [String(r.user), Number(r.at)]));
    return new PgUserState(sql, log, last, deadlineMs);
  }

  recordAtrnSuccess(user: string, atMs: number): void {
    const at = Math.round(atMs);
    this.#last.set(user, Math.max(at, this.#last.get(user) ?? 0));
    within(
      this.#sql`INSERT INTO user_state ("user", last_atrn_success) VALUES (${user}, ${at})
        ON CONFLICT ("user") DO UPDATE SET last_atrn_success =
          greatest(user_state.last_atrn_success, EXCLUDED.last_atrn_success)`,
      this.#deadlineMs,
      "ATRN timestamp",
    ).catch((err) => this.#log.warn("metrics_state_write_failed", { user, error: String(err) }));
  }

  lastAtrnSuccesses(): Map<string, number> {
    return new Map(this.#last);
  }
}
