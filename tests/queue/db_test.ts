import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { applyMigrations, inImmediateTransaction, openDatabase } from "../../src/queue/db.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

Deno.test("openDatabase() creates the data directory with mode 0700 and uses WAL", async () => {
  await withTempDataDir((dir) => {
    const dataDir = `${dir}/nested/data`;
    const db = openDatabase(dataDir);
    try {
      assert.equal(Deno.statSync(dataDir).mode! & 0o777, 0o700); // mode exists on Linux
      assert.deepEqual({ ...db.prepare("PRAGMA journal_mode").get() }, { journal_mode: "wal" });
      assert.deepEqual({ ...db.prepare("PRAGMA synchronous").get() }, { synchronous: 2 });
      assert.deepEqual({ ...db.prepare("PRAGMA foreign_keys").get() }, { foreign_keys: 1 });
      assert.deepEqual({ ...db.prepare("PRAGMA busy_timeout").get() }, { timeout: 5000 });
    } finally {
      db.close();
    }
  });
});

Deno.test("openDatabase() keeps the database and its WAL files readable by the owner only", async () => {
  await withTempDataDir((dir) => {
    const db = openDatabase(dir);
    try {
      db.exec("CREATE TABLE t (x)");
      db.exec("INSERT INTO t VALUES (1)");
      for (const name of ["odmr.db", "odmr.db-wal", "odmr.db-shm"]) {
        // The file holds password-equivalent CRAM-MD5 verifiers.
        assert.equal(Deno.statSync(`${dir}/${name}`).mode! & 0o777, 0o600, name); // Linux has mode
      }
    } finally {
      db.close();
    }
  });
});

Deno.test("openDatabase() names the database path when the data directory is unusable", async () => {
  await withTempDataDir((dir) => {
    const file = `${dir}/not-a-dir`;
    Deno.writeTextFileSync(file, "x");
    assert.throws(
      () => openDatabase(file),
      (err: unknown) =>
        err instanceof Error &&
        err.message.startsWith(`Cannot open queue database "${file}/odmr.db": `),
    );
  });
});

Deno.test("applyMigrations() runs only the steps not yet applied, per component", async () => {
  await withTempDataDir((dir) => {
    const db = openDatabase(dir);
    try {
      applyMigrations(db, "queue", ["CREATE TABLE a (x)"]);
      applyMigrations(db, "auth", ["CREATE TABLE b (x)"]);
      applyMigrations(db, "queue", ["CREATE TABLE a (x)", "CREATE TABLE c (x)"]);
      applyMigrations(db, "queue", ["CREATE TABLE a (x)", "CREATE TABLE c (x)"]);
      const rows = db.prepare("SELECT component, version FROM schema_version ORDER BY component")
        .all();
      assert.deepEqual(rows.map((r) => ({ ...r })), [
        { component: "auth", version: 1 },
        { component: "queue", version: 2 },
      ]);
    } finally {
      db.close();
    }
  });
});

Deno.test("applyMigrations() rolls back a failing step and keeps the earlier version", async () => {
  await withTempDataDir((dir) => {
    const db = openDatabase(dir);
    try {
      applyMigrations(db, "queue", ["CREATE TABLE a (x)"]);
      assert.throws(
        () => applyMigrations(db, "queue", ["CREATE TABLE a (x)", "CREATE TABLE d (x); BOGUS"]),
        /Cannot migrate database schema for "queue" to version 2/,
      );
      const other = new DatabaseSync(`${dir}/odmr.db`);
      try {
        assert.deepEqual(
          { ...other.prepare("SELECT version FROM schema_version WHERE component='queue'").get() },
          { version: 1 },
        );
        assert.equal(
          other.prepare("SELECT name FROM sqlite_master WHERE name = 'd'").get(),
          undefined,
        );
      } finally {
        other.close();
      }
    } finally {
      db.close();
    }
  });
});

// SQLite rolls the whole transaction back on its own on SQLITE_FULL or an I/O error (simulated
// by a ROLLBACK inside): the caller must hear that cause, not "no transaction is active".
Deno.test("inImmediateTransaction() rethrows the cause after SQLite rolled back on its own", () => {
  const db = new DatabaseSync(":memory:");
  try {
    db.exec("CREATE TABLE t (v)");
    assert.throws(
      () =>
        inImmediateTransaction(db, () => {
          db.exec("INSERT INTO t VALUES (1)");
          db.exec("ROLLBACK");
          throw new Error("database or disk is full");
        }),
      /^Error: database or disk is full$/,
    );
    assert.equal(db.isTransaction, false);
    assert.equal(db.prepare("SELECT count(*) AS n FROM t").get()?.n, 0);
    // A failure SQLite did not roll back itself is still rolled back here.
    assert.throws(
      () =>
        inImmediateTransaction(db, () => {
          db.exec("INSERT INTO t VALUES (2)");
          throw new Error("later step failed");
        }),
      /^Error: later step failed$/,
    );
    assert.equal(db.isTransaction, false);
    assert.equal(db.prepare("SELECT count(*) AS n FROM t").get()?.n, 0);
  } finally {
    db.close();
  }
});

Deno.test("applyMigrations() names a step's own error after SQLite rolled back on its own", () => {
  const db = new DatabaseSync(":memory:");
  try {
    assert.throws(
      () => applyMigrations(db, "queue", ["CREATE TABLE d (x); ROLLBACK; BOGUS"]),
      /Cannot migrate database schema for "queue" to version 1: .*syntax error/,
    );
    assert.equal(db.isTransaction, false);
  } finally {
    db.close();
  }
});
