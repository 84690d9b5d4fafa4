/**
 * Opens the one SQLite file of a data directory (`data_dir/odmr.db`) and applies numbered
 * schema migrations per component ("queue", "auth"). WAL + synchronous=FULL: a commit is on
 * disk when it returns, and `user …`/`queue …` commands can work beside a running `serve`.
 */
import { errorText } from "../errors.ts";
import { dirname, join } from "../posix_path.ts";
import { DatabaseSync } from "node:sqlite";
import { walImage } from "./wal_image.ts";

/** Name of the database file inside the data directory. */
export const DATABASE_FILE = "odmr.db";

/** How long a statement waits for another connection's write lock before failing. */
const BUSY_TIMEOUT_MS = 5000;

/**
 * Creates `dataDir` (mode 0700) if missing and opens `dataDir/odmr.db`.
 * Throws an Error naming the path when the directory or file cannot be used.
 */
export function openDatabase(dataDir: string): DatabaseSync {
  const path = join(dataDir, DATABASE_FILE);
  try {
    Deno.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new Error(`Cannot open queue database "${path}": ${errorText(err)}`);
  }
  let db: DatabaseSync | undefined;
  try {
    // The file holds CRAM-MD5 verifiers (password-equivalent): owner only. SQLite gives the
    // -wal and -shm files the database file's mode.
    Deno.writeFileSync(path, new Uint8Array(0), { append: true, mode: 0o600 });
    Deno.chmodSync(path, 0o600);
    db = new DatabaseSync(path);
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // Takes effect only while the file has no table yet (a new data_dir): space of delivered
    // mail is then given back with `incremental_vacuum` without stopping (an older file is
    // converted once by `ensureIncrementalVacuum`). Only then: on a file with tables the pragma
    // still writes, and on a full disk that failed every open, reads included.
    if (isEmpty(db)) db.exec("PRAGMA auto_vacuum = INCREMENTAL");
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA foreign_keys = ON");
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      // The open already failed; the first error is the one worth reporting.
    }
    throw new Error(`Cannot open queue database "${path}": ${errorText(err)}`);
  }
}

/**
 * `openDatabase` for a tool that only reads (`queue list|show|summary`). On a full disk (or without
 * a write grant) even a reading connection must make the -shm file and fails ("disk I/O error");
 * the file is then read as it is, creating nothing beside it, so that the operator sees what waits
 * before deciding what to delete: when no WAL is left (serve stopped cleanly: every commit is in
 * the database file) with SQLite's `immutable`; when a WAL is left (a crash, a copy made while
 * serve ran) with its committed frames applied, in memory (src/queue/wal_image.ts).
 */
export function openDatabaseToRead(dataDir: string): DatabaseSync {
  try {
    return openDatabase(dataDir);
  } catch (err) {
    const path = join(dataDir, DATABASE_FILE);
    try {
      const db = hasNoWal(path) ? openImmutable(path) : openWithWal(path);
      db.prepare("SELECT count(*) AS n FROM sqlite_master").get();
      return db;
    } catch {
      throw err;
    }
  }
}

/**
 * The database file `path` with its WAL's committed frames applied, in memory. The file is read
 * before the WAL: a checkpoint copies only frames of the WAL's current generation into it, which
 * the WAL read after it still holds, unless SQLite started the WAL over meanwhile (new salts in
 * its header): then both are read again (a serve writing beside it; three times at most).
 */
function openWithWal(path: string): DatabaseSync {
  for (let attempt = 1;; attempt++) {
    const header = walHeader(path);
    const file = Deno.readFileSync(path);
    const wal = Deno.readFileSync(`${path}-wal`);
    if (header.every((b, i) => wal[i] === b)) {
      const db = new DatabaseSync(":memory:");
      db.deserialize(walImage(file, wal));
      return db;
    }
    if (attempt === 3) throw new Error("its WAL started over at every read");
  }
}

/** The first 32 bytes of `path`'s WAL (its header: magic, page size, salts, checksum). */
function walHeader(path: string): Uint8Array {
  using wal = Deno.openSync(`${path}-wal`);
  const header = new Uint8Array(32);
  let filled = 0;
  while (filled < header.length) {
    const n = wal.readSync(header.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return header.subarray(0, filled);
}

/**
 * The database file `path` read as it is, creating nothing beside it (no -wal, no -shm): for a
 * file with no WAL, whose every commit is in it. SQLite's `immutable` URI; Deno checks that URI
 * as a path (`file:///…/odmr.db?immutable=1`), which no grant of the data directory covers
 * (`--allow-read=/var/lib/odmr-relay`, README "Permissions"), so under such a grant the file is
 * read into memory instead (as src/queue/wal_image.ts does with a WAL), marked as a
 * rollback-journal file (header bytes 18 and 19) so that the in-memory open reads its pages.
 */
export function openImmutable(path: string): DatabaseSync {
  try {
    // node:url only here (the read-only tools), not at serve's start (src/wire/idna.ts).
    const { pathToFileURL } = process.getBuiltinModule("node:url") as typeof import("node:url");
    return new DatabaseSync(`${pathToFileURL(path).href}?immutable=1`, { readOnly: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotCapable)) throw err;
  }
  const image = Deno.readFileSync(path);
  if (image.length >= 20) image.fill(1, 18, 20);
  const db = new DatabaseSync(":memory:");
  db.deserialize(image);
  return db;
}

/** True when `path` has no WAL file, or an empty one. */
function hasNoWal(path: string): boolean {
  try {
    return Deno.statSync(`${path}-wal`).size === 0;
  } catch (err) {
    return err instanceof Deno.errors.NotFound;
  }
}

/**
 * Runs the `steps` (SQL) of `component` that are not yet applied, in order, each in its own
 * transaction together with the bump of `schema_version`. Step i (0-based) is version i+1.
 */
export function applyMigrations(
  db: DatabaseSync,
  component: string,
  steps: readonly string[],
): void {
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_version (" +
      "component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
  );
  const row: unknown = db.prepare("SELECT version FROM schema_version WHERE component = ?")
    .get(component);
  const current = readVersion(row);
  if (current > steps.length) {
    throw new Error(
      `Cannot use database schema for "${component}": version ${current} is newer than this ` +
        `program knows (${steps.length})`,
    );
  }
  const bump = db.prepare(
    "INSERT INTO schema_version (component, version) VALUES (?, ?) " +
      "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
  );
  for (let i = current; i < steps.length; i++) {
    // BEGIN IMMEDIATE: two processes starting at once must not both apply the same step.
    db.exec("BEGIN IMMEDIATE");
    try {
      const again = readVersion(
        db.prepare("SELECT version FROM schema_version WHERE component = ?").get(component),
      );
      if (again <= i) {
        db.exec(steps[i] ?? "");
        bump.run(component, i + 1);
      }
      db.exec("COMMIT");
    } catch (err) {
      // SQLite may have rolled back on its own (SQLITE_FULL, IOERR): then a ROLLBACK would
      // replace the cause with "no transaction is active".
      if (db.isTransaction) db.exec("ROLLBACK");
      throw new Error(
        `Cannot migrate database schema for "${component}" to version ${i + 1}: ${errorText(err)}`,
      );
    }
  }
}

/**
 * For a connection that only reads (`queue list|show|summary`): checks that `component`'s
 * schema is the one this program reads, and writes nothing. A pending migration is not applied:
 * the file may belong to an older serve still running, or sit on a full disk (where the write
 * fails, and on an `immutable` open cannot be made at all); the error says what to do instead.
 * Only a database without `component`'s tables yet (nothing to read, no other version's) is
 * set up as `applyMigrations` would.
 */
export function checkSchemaToRead(
  db: DatabaseSync,
  component: string,
  steps: readonly string[],
): void {
  const hasTable = db.prepare(
    "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
  ).get() !== undefined;
  const current = hasTable
    ? readVersion(
      db.prepare("SELECT version FROM schema_version WHERE component = ?").get(component),
    )
    : 0;
  if (current === 0 || current >= steps.length) {
    applyMigrations(db, component, steps); // creates, is a no-op, or says "newer"
    return;
  }
  throw new Error(
    `Cannot read database schema for "${component}": the file's schema is version ${current}, ` +
      `this program reads version ${steps.length}. A read-only command does not upgrade it: ` +
      "start this version's serve once (it upgrades the file), or use the program that wrote it",
  );
}

/**
 * Runs `fn` in a transaction of its own: COMMIT when it returns, ROLLBACK (and the error
 * again) when it throws. IMMEDIATE takes the write lock first, so that another connection
 * writing at the same time waits for us (busy_timeout) instead of failing our COMMIT.
 */
export function inImmediateTransaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const value = fn();
    db.exec("COMMIT");
    return value;
  } catch (err) {
    // Not after SQLite rolled back on its own: that ROLLBACK's error would hide `err`.
    if (db.isTransaction) db.exec("ROLLBACK");
    throw err;
  }
}

/** Changes of the users' tables made through each connection (see noteUsersChanged). */
const usersChanges = new WeakMap<DatabaseSync, number>();

/**
 * Records that users or their domains may have changed through `db`. SQLite's `PRAGMA
 * data_version` tells a connection of other connections' commits only: what remembers those
 * tables (src/auth/_domain_owners.ts) compares this count as well.
 */
export function noteUsersChanged(db: DatabaseSync): void {
  usersChanges.set(db, (usersChanges.get(db) ?? 0) + 1);
}

/** How many times noteUsersChanged was called for `db`. */
export function usersChangeCount(db: DatabaseSync): number {
  return usersChanges.get(db) ?? 0;
}

/** SQLite's `auto_vacuum` value for INCREMENTAL. */
const AUTO_VACUUM_INCREMENTAL = 2;

/**
 * Makes sure the file can give space back with `PRAGMA incremental_vacuum`: a database created
 * before that setting (auto_vacuum NONE) is rewritten once with VACUUM, which needs a moment
 * of exclusive access and about the file's size in free disk. Returns true if it ran VACUUM.
 */
export function ensureIncrementalVacuum(db: DatabaseSync): boolean {
  const row: unknown = db.prepare("PRAGMA auto_vacuum").get();
  const mode = typeof row === "object" && row !== null && "auto_vacuum" in row
    ? row.auto_vacuum
    : undefined;
  if (mode === AUTO_VACUUM_INCREMENTAL) return false;
  db.exec("PRAGMA auto_vacuum = INCREMENTAL");
  // Before the first table the pragma alone is enough.
  if (isEmpty(db)) return false;
  // The new auto_vacuum mode is written only by a full VACUUM (https://sqlite.org/pragma.html#pragma_auto_vacuum).
  db.exec("VACUUM");
  return true;
}

/** True while the file has no table, index or view yet (a new database). */
function isEmpty(db: DatabaseSync): boolean {
  return db.prepare("SELECT 1 AS found FROM sqlite_master LIMIT 1").get() === undefined;
}

function readVersion(row: unknown): number {
  if (typeof row !== "object" || row === null) return 0;
  const v: unknown = (row as Record<string, unknown>).version;
  return typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : 0;
}

/** The main database file of a connection ("" for an in-memory or temporary database). */
export function mainFile(db: DatabaseSync): string {
  for (const row of db.prepare("PRAGMA database_list").all()) {
    if (row.name === "main") return typeof row.file === "string" ? row.file : "";
  }
  return "";
}

/** The directory of a connection's main file (undefined for an in-memory database). */
export function dirOf(db: DatabaseSync): string | undefined {
  const file = mainFile(db);
  return file === "" ? undefined : dirname(file);
}
