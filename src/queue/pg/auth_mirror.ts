/**
 * Users, domains and verifiers on PostgreSQL, kept as one versioned snapshot (`auth_state`) of
 * the credential tables, so that the credential store (src/auth/store.ts, synchronous, on
 * SQLite) runs unchanged on every node over an in-memory SQLite copy. A node reloads the copy
 * when another one writes (LISTEN/NOTIFY, plus a poll as a safety net); the `user` command
 * edits a copy inside a transaction that holds the snapshot row locked, then writes it back.
 * Tables are copied whole: they are small (one row per user, domain and verifier).
 * Every read and edit answers within the calls' deadline (`deadlineMs`, _deadline.ts): a
 * refresh stuck on a silent connection stopped every later refresh (they share one), and a
 * `user` command waited for good for a connection.
 */
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import type { Logger } from "../../observe/log.ts";
import type { Sql } from "./connect.ts";
import { noteUsersChanged } from "../db.ts";
import { PG_CALL_DEADLINE_MS, transactionWithin, within } from "./_deadline.ts";

/** NOTIFY channel of snapshot changes. */
const CHANNEL = "odmr_auth";
/** Safety-net poll of the snapshot version (a lost NOTIFY, a reconnect). */
const POLL_MS = 5000;

type Rows = Record<string, Record<string, unknown>[]>;

/** Tables of the copy: everything but SQLite's own and the schema versions. */
function tablesOf(db: DatabaseSync): string[] {
  return db.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' " +
      "AND name <> 'schema_version' ORDER BY name",
  ).all().map((r) => String(r.name));
}

/** The copy's rows as JSON-safe values (blobs as {"$b64"}, big integers as {"$big"}). */
export function dumpTables(db: DatabaseSync): Rows {
  const out: Rows = {};
  for (const table of tablesOf(db)) {
    out[table] = db.prepare(`SELECT * FROM "${table}"`).all().map((row) => {
      const encoded: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(row)) {
        encoded[k] = v instanceof Uint8Array
          ? { $b64: btoa(String.fromCharCode(...v)) }
          : typeof v === "bigint"
          ? { $big: v.toString() }
          : v;
      }
      return encoded;
    });
  }
  return out;
}

/** The rows of `source`'s tables that `like` has (the credential tables of a data_dir file). */
export function readTablesLike(like: DatabaseSync, source: DatabaseSync): Rows {
  const present = new Set(tablesOf(source));
  const out: Rows = {};
  for (const table of tablesOf(like)) {
    if (!present.has(table)) continue;
    out[table] = source.prepare(`SELECT * FROM "${table}"`).all().map((row) => ({ ...row }));
  }
  return out;
}

/** Replaces every row of the copy with `rows`, in one transaction. */
export function loadTables(db: DatabaseSync, rows: Rows): void {
  db.exec("BEGIN");
  try {
    // Tables are copied in name order, not in foreign-key order: check at COMMIT instead.
    db.exec("PRAGMA defer_foreign_keys = ON");
    const tables = tablesOf(db);
    // Every table emptied before any is filled: deleting the users cascades to the rows that
    // refer to them (domains, pins), which must not have been loaded yet.
    for (const table of tables) db.exec(`DELETE FROM "${table}"`);
    for (const table of tables) {
      for (const row of rows[table] ?? []) {
        const cols = Object.keys(row);
        if (cols.length === 0) continue;
        const sql = `INSERT INTO "${table}" (${cols.map((c) => `"${c}"`).join(", ")}) VALUES (${
          cols.map(() => "?").join(", ")
        })`;
        db.prepare(sql).run(...cols.map((c) => decode(row[c])));
      }
    }
    db.exec("COMMIT");
  } catch (err) {
    // Not after SQLite rolled back on its own: that ROLLBACK's error would hide `err`.
    if (db.isTransaction) db.exec("ROLLBACK");
    throw err;
  } finally {
    // This connection's own writes: what remembers domain owners must hear of them.
    noteUsersChanged(db);
  }
}

function decode(v: unknown): SQLInputValue {
  if (v === null || typeof v === "string" || typeof v === "number") return v;
  if (typeof v === "object" && v !== null && "$b64" in v && typeof v.$b64 === "string") {
    return Uint8Array.from(atob(v.$b64), (c) => c.charCodeAt(0));
  }
  if (typeof v === "object" && v !== null && "$big" in v && typeof v.$big === "string") {
    return BigInt(v.$big);
  }
  if (typeof v === "boolean") return v ? 1 : 0;
  throw new Error(`Cannot load credential row value: ${JSON.stringify(v)}`);
}

/** Keeps an in-memory copy in step with the snapshot; `stop()` ends it. */
export class AuthMirror {
  readonly #sql: Sql;
  readonly #db: DatabaseSync;
  readonly #log: Logger;
  readonly #deadlineMs: number;
  #version = -1;
  #timer: ReturnType<typeof setInterval> | undefined;
  #unlisten: (() => Promise<void>) | undefined;
  #refreshing: Promise<void> | undefined;

  private constructor(sql: Sql, db: DatabaseSync, log: Logger, deadlineMs: number) {
    this.#sql = sql;
    this.#db = db;
    this.#log = log;
    this.#deadlineMs = deadlineMs;
  }

  /** Loads the snapshot into `db` (which holds the credential tables) and follows changes. */
  static async start(
    sql: Sql,
    db: DatabaseSync,
    log: Logger,
    deadlineMs: number = PG_CALL_DEADLINE_MS,
  ): Promise<AuthMirror> {
    const mirror = new AuthMirror(sql, db, log, deadlineMs);
    await mirror.refresh();
    const sub = await within(
      sql.listen(CHANNEL, () => {
        mirror.refresh().catch(() => {});
      }),
      deadlineMs,
      "LISTEN for the users' changes",
    );
    mirror.#unlisten = () => sub.unlisten();
    mirror.#timer = setInterval(() => mirror.refresh().catch(() => {}), POLL_MS);
    return mirror;
  }

  /** Reloads the copy if the snapshot changed. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refresh(): Promise<void> {
    try {
      const [head] = await within(
        this.#sql`SELECT version::float8 AS version FROM auth_state WHERE id = 1`,
        this.#deadlineMs,
        "users' version",
      );
      const version = Number(head?.version ?? 0);
      if (version === this.#version) return;
      const [row] = await within(
        this.#sql`SELECT version::float8 AS version, rows FROM auth_state WHERE id = 1`,
        this.#deadlineMs,
        "users",
      );
      loadTables(this.#db, (row?.rows ?? {}) as Rows);
      this.#version = Number(row?.version ?? 0);
    } catch (err) {
      // The copy stays as it was: users keep working from the last known state.
      this.#log.warn("auth_mirror_refresh_failed", { reason: String(err) });
      throw err;
    }
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    // Bounded: on a silent LISTEN connection serve's stop waited for good (the pool's end
    // drops that connection next).
    const unlisten = this.#unlisten?.();
    if (unlisten !== undefined) {
      await within(unlisten, this.#deadlineMs, "UNLISTEN").catch(() => {});
    }
    await this.#refreshing?.catch(() => {});
  }
}

/** Loads the current snapshot into `db` (a reader's copy: no lock). */
export async function readAuthSnapshot(
  sql: Sql,
  db: DatabaseSync,
  deadlineMs: number = PG_CALL_DEADLINE_MS,
): Promise<void> {
  const [row] = await within(
    sql`SELECT rows FROM auth_state WHERE id = 1`,
    deadlineMs,
    "users",
  );
  loadTables(db, (row?.rows ?? {}) as Rows);
}

/**
 * Runs `edit` on a copy of the snapshot while holding it locked (FOR UPDATE), then writes the
 * copy back, bumps the version and tells every node; a thrown error writes nothing. The whole
 * edit, waiting for a connection and for another editor included, answers within
 * `deadlineMs` (`transactionWithin`): an editor holds the row for milliseconds, and one whose
 * client went silent is ended by the server at the same bound. Past it the caller gets
 * PgDeadlineError; an edit whose COMMIT was sent may still have been made.
 */
export function editAuthSnapshot<T>(
  sql: Sql,
  db: DatabaseSync,
  edit: () => Promise<T>,
  deadlineMs: number = PG_CALL_DEADLINE_MS,
): Promise<T> {
  return transactionWithin(sql, deadlineMs, "users' edit", async (tx) => {
    const [row] = await tx`SELECT rows FROM auth_state WHERE id = 1 FOR UPDATE`;
    loadTables(db, (row?.rows ?? {}) as Rows);
    const value = await edit();
    await tx`UPDATE auth_state SET version = version + 1, rows = ${
      tx.json(dumpTables(db) as Parameters<typeof tx.json>[0])
    } WHERE id = 1`;
    await tx`SELECT pg_notify(${CHANNEL}, '')`;
    return value;
  }, () => {});
}
