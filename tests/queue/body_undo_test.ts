/**
 * A refused message's body leaves its segment as soon as nothing names it (#13, rev13a): the
 * segment of bodies no row names goes at once, not at serve's next start. Faults are injected
 * on the store's own connection (`failingExec`). A body whose row may still be there is never
 * dropped.
 */
import assert from "node:assert/strict";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { applyMigrations, openDatabase } from "../../src/queue/db.ts";
import { BodyFiles } from "../../src/queue/_body_files.ts";
import { QUEUE_MIGRATIONS } from "../../src/queue/_schema.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { Route } from "../../src/queue/types.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { failingExec } from "../_helpers/failing_exec.ts";
import { FakeSync, turns } from "../_helpers/fake_wal_sync.ts";
import { filledBodyFiles, queueMessage, rcpt, withStore } from "../_helpers/queue_fixtures.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

/** Each body in a segment of its own (it takes no more once it holds any). */
const ONE_PER_FILE = { segmentBytes: 1 } as const;
const BODY = new Uint8Array(100 * 1024).fill(0x61);

/**
 * Writes BODY for a message whose recipient row breaks the CHECK on route: its message row is in
 * by then, so the writer's undo deletes it in the open group transaction, and commit() rejects.
 */
async function queueUndone(store: SqliteQueueStore): Promise<void> {
  const bad = await store.begin({
    mailFrom: "",
    params: {},
    recipients: [rcpt("a@one.test", { route: "nowhere" as Route })],
  });
  await bad.write(BODY);
  await assert.rejects(bad.commit(), /CHECK constraint failed/);
}

Deno.test("a body whose COMMIT failed and whose rows could not be cleaned up goes at once (rev13a, #13)", async () => {
  const events: RecordedEvent[] = [];
  await withStore(async (store, dataDir, db) => {
    const faults = failingExec(db);
    // The group's COMMIT fails (rolled back), then the writer's clean-up cannot begin.
    faults.plan.push("COMMIT", "BEGIN IMMEDIATE");
    await assert.rejects(
      queueMessage(store, { to: ["a@one.test"], body: BODY }),
      /injected: COMMIT failed/,
    );
    assert.deepEqual(faults.plan, [], "both faults were met");
    assert.ok(events.some((e) => e.event === "queue_abort_cleanup_failed"));
    assert.deepEqual(await store.list(), []);
    // No row names it: it goes now, not at the next start.
    assert.deepEqual(filledBodyFiles(dataDir), []);
  }, { bodyFiles: ONE_PER_FILE, logger: recordingLogger(events) });
});

Deno.test("a body whose row stayed (committed, its sync failed) and could not be cleaned up stays whole (#13)", async () => {
  const sync = new FakeSync();
  await withStore(async (store, dataDir, db) => {
    const faults = failingExec(db);
    const writer = await store.begin({
      mailFrom: "",
      params: {},
      recipients: [rcpt("a@one.test")],
    });
    await writer.write(BODY);
    const committing = writer.commit();
    committing.catch(() => {});
    while (sync.pending.length === 0) await turns(1);
    // The COMMIT went through; its sync fails, and the clean-up of its rows cannot begin.
    faults.plan.push("BEGIN IMMEDIATE");
    sync.finish(0, new Error("EIO"));
    await assert.rejects(committing, /Cannot sync queue database: EIO/);
    assert.deepEqual(faults.plan, []);
    // Its row is still there (until it can be removed: refused_rows_test.ts): its body stays
    // whole with it, as another process reads it (this one no longer hands it out).
    assert.equal(filledBodyFiles(dataDir).length, 1);
    const other = new SqliteQueueStore(openDatabase(dataDir), { removeOrphans: false });
    try {
      assert.deepEqual(await collectBytes(other.readBody(writer.id)), BODY);
    } finally {
      await other.close();
    }
  }, { bodyFiles: ONE_PER_FILE, walSync: sync, closeMayReject: true });
});

Deno.test("a body whose row the writer's undo deleted goes at once, also when the group's COMMIT fails (#13)", async () => {
  await withStore(async (store, dataDir, db) => {
    const faults = failingExec(db);
    await queueUndone(store);
    // The group transaction that held the row and its deletion is still open; its COMMIT fails.
    assert.equal(db.isTransaction, true);
    faults.plan.push("COMMIT");
    await assert.rejects(queueMessage(store, { to: ["b@one.test"] }), /injected: COMMIT failed/);
    assert.deepEqual(faults.plan, []);
    assert.deepEqual(await store.list(), []);
    // The row was never there for anyone: its body goes, not at the next start.
    assert.deepEqual(filledBodyFiles(dataDir), []);
  }, { bodyFiles: ONE_PER_FILE });
});

Deno.test("takeGone hands out only deletions its sync committed: one whose COMMIT failed keeps its body (#13)", async () => {
  await withTempDataDir((dataDir) => {
    const db = openDatabase(dataDir);
    applyMigrations(db, "queue", QUEUE_MIGRATIONS);
    const files = BodyFiles.open(db, NULL_LOGGER);
    assert.ok(files);
    try {
      db.exec(
        "INSERT INTO messages (id, received_at, mail_from, size, params, body_file) " +
          "VALUES ('m1', 0, '', 10, '{}', 'segment@0')",
      );
      db.exec("BEGIN IMMEDIATE");
      db.exec("DELETE FROM messages WHERE id = 'm1'");
      // What the group does when that COMMIT fails: it rolls back and the row names it again.
      assert.deepEqual(files.takeGone(() => db.exec("ROLLBACK")), []);
      assert.equal(db.prepare("SELECT count(*) AS n FROM messages").get()?.n, 1);
      db.exec("BEGIN IMMEDIATE");
      db.exec("DELETE FROM messages WHERE id = 'm1'");
      assert.deepEqual(files.takeGone(() => db.exec("COMMIT")), ["segment@0"]);
    } finally {
      files.close();
      db.close();
    }
  });
});

Deno.test("a body whose row the writer's undo deleted is counted out once: its segment stays for the body beside it (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    // Shared segments (the default): both bodies go to one, kept's first (both of the "mixed"
    // key: a recipient not routed to ATRN).
    const store = new SqliteQueueStore(openDatabase(dataDir));
    const kept = await queueMessage(store, {
      to: [rcpt("a@one.test", { route: "mx" })],
      body: BODY,
    });
    // Its row is in when its recipient row breaks the CHECK: the undo deletes it in the open
    // transaction, and the body is dropped (counted out) at once.
    await queueUndone(store);
    assert.equal(filledBodyFiles(dataDir).length, 1, "one segment for both");
    // Close commits that transaction with the deletion; the bodies of deleted rows go then. The
    // undone row's deletion must not count its body out a second time.
    await store.close();
    const next = new SqliteQueueStore(openDatabase(dataDir));
    try {
      assert.deepEqual(await collectBytes(next.readBody(kept)), BODY);
    } finally {
      await next.close();
    }
  });
});
