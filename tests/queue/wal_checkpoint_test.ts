/**
 * The queue's own WAL checkpoints (src/queue/_wal_checkpoint.ts, issue 13 item 4): SQLite's
 * automatic checkpoint is off, pages are copied after the 250s went out and the database file
 * is synced off the loop; the WAL is never started over before that sync returned, it stays
 * bounded under constant writes, and a failed database sync refuses later messages.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { DATABASE_FILE, openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { CheckpointOptions } from "../../src/queue/_wal_checkpoint.ts";
import type { NewMessage } from "../../src/queue/types.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

const MESSAGE: NewMessage = {
  mailFrom: "sender@example.net",
  params: {},
  recipients: [{ address: "a@example.org", domain: "example.org" }],
};
/** 16 KiB: four overflow pages and then some per message. */
const BODY = new Uint8Array(16 * 1024).fill(0x41);

/** Frames in the WAL and how many are copied, from the `-shm` header (sqlite.org/walformat.html). */
function walIndex(path: string): { frames: number; backfilled: number } {
  const head = Deno.readFileSync(`${path}-shm`).subarray(0, 100);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return { frames: view.getUint32(16, true), backfilled: view.getUint32(96, true) };
}

/** The WAL header's salts: they change whenever SQLite starts the WAL over. */
function walSalt(path: string): string {
  const head = Deno.readFileSync(`${path}-wal`).subarray(16, 24);
  return Array.from(head).join(",");
}

async function store1(store: SqliteQueueStore, n: number, parallel = 1): Promise<void> {
  for (let i = 0; i < n; i += parallel) {
    const commits: Promise<void>[] = [];
    for (let j = 0; j < parallel && i + j < n; j++) {
      const w = await store.begin(MESSAGE);
      await w.write(BODY);
      commits.push(w.commit());
    }
    await Promise.all(commits);
  }
}

/** Lets the immediates (the checkpoint after a sync) and promise jobs run. */
async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0));
}

async function withStore(
  opts: CheckpointOptions,
  fn: (store: SqliteQueueStore, path: string) => Promise<void>,
): Promise<void> {
  await withTempDataDir(async (dataDir) => {
    const path = `${dataDir}/${DATABASE_FILE}`;
    const store = new SqliteQueueStore(openDatabase(dataDir), { checkpoint: opts });
    try {
      await fn(store, path);
    } finally {
      // After a failed sync close() fails too (nothing more is synced): the test said so.
      await store.close().catch(() => {});
    }
  });
}

Deno.test("own checkpoints: pages are copied once the syncs went through (#13)", async () => {
  await withStore({ pages: 40, limitPages: 1000 }, async (store, path) => {
    const db = new DatabaseSync(path);
    try {
      // 20 × ~6 pages: SQLite's automatic checkpoint (at 4000 pages) would not have run yet.
      await store1(store, 20);
      await turns();
      // The bodies are in the database file itself, not only in the WAL.
      const bytes = (await Deno.stat(path)).size;
      assert.ok(bytes >= 20 * BODY.length, `database file of ${bytes} bytes`);
      assert.equal(db.prepare("PRAGMA integrity_check").get()?.integrity_check, "ok");
    } finally {
      db.close();
    }
  });
});

Deno.test("own checkpoints: the WAL stays bounded under constant writes and starts over (#13)", async () => {
  const limitPages = 120;
  await withStore({ pages: 40, limitPages }, async (store, path) => {
    let most = 0;
    let restarts = 0;
    let salt = "";
    for (let round = 0; round < 60; round++) {
      await store1(store, 4, 4);
      most = Math.max(most, walIndex(path).frames);
      const now = walSalt(path);
      if (salt !== "" && now !== salt) restarts++;
      salt = now;
    }
    // 240 messages × ~6 pages ≈ 1400 pages written; without the writer's own checkpoint after
    // the copies (restartDue), the WAL would never start over under this load.
    assert.ok(restarts >= 3, `the WAL started over ${restarts} times`);
    // A bound: the limit, plus what one round of 4 messages writes before the next COMMIT.
    assert.ok(most <= limitPages + 60, `the WAL held up to ${most} frames`);
    await store.close();
    const db = new DatabaseSync(path);
    try {
      assert.equal(db.prepare("SELECT count(*) AS n FROM messages").get()?.n, 240);
      assert.equal(db.prepare("PRAGMA integrity_check").get()?.integrity_check, "ok");
    } finally {
      db.close();
    }
  });
});

Deno.test("own checkpoints: the WAL is not started over before the database file is synced (#13)", async () => {
  let release: () => void = () => {};
  let calls = 0;
  const syncDatabase = () => {
    calls++;
    return new Promise<void>((resolve) => release = resolve);
  };
  await withStore({ pages: 40, limitPages: 100_000, syncDatabase }, async (store, path) => {
    await store1(store, 10);
    await turns();
    assert.equal(calls, 1, "a checkpoint copied pages and waits for the database sync");
    const copied = walIndex(path);
    assert.ok(copied.backfilled > 0);
    const salt = walSalt(path);
    // Writes go on while the database file is not synced: they append, never overwrite.
    await store1(store, 10);
    await turns();
    assert.equal(walSalt(path), salt, "the WAL was started over before the database sync");
    assert.ok(walIndex(path).frames > copied.frames);
    release();
    await turns();
    // Synced now: the writer finishes the checkpoint after its next COMMIT, and the write after
    // that starts the WAL over.
    await store1(store, 2);
    await store1(store, 1);
    assert.notEqual(walSalt(path), salt, "the WAL starts over once the database is synced");
  });
});

Deno.test("own checkpoints: a failed database sync refuses later messages (#13)", async () => {
  const syncDatabase = () => Promise.reject(new Error("EIO (test)"));
  await withStore({ pages: 40, limitPages: 100_000, syncDatabase }, async (store) => {
    // The checkpoint after ~7 messages fails at its database sync; a commit after it fails.
    let refused = 0;
    for (let i = 0; i < 20 && refused === 0; i++) {
      await store1(store, 1).catch((err) => {
        assert.match(String(err), /Cannot sync queue database: EIO \(test\)/);
        refused = i + 1;
      });
      await turns();
    }
    assert.ok(refused > 0, "a message was refused once the database sync failed");
    const w = await store.begin(MESSAGE);
    await w.write(BODY);
    await assert.rejects(w.commit(), /Cannot sync queue database: EIO \(test\)/);
    await assert.rejects(store.close(), /Cannot sync queue database/);
  });
});
