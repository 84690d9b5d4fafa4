/**
 * Group commits made durable by a WAL sync off the event loop (issue 13 item 4): a commit
 * resolves only after the sync that covers it, a lone sender's sync starts at once (no group
 * window), syncs overlap (a failed sync: sync_failure_test.ts). Driven by a fake `WalSync` whose
 * syncs the test finishes, never by timing.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { deferWalSync, WAL_CHECKPOINT_PAGES, WAL_KEEP_BYTES } from "../../src/queue/_wal_sync.ts";
import type { NewMessage } from "../../src/queue/types.ts";
import { FakeSync, track, turns } from "../_helpers/fake_wal_sync.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

const MESSAGE: NewMessage = {
  mailFrom: "sender@example.net",
  params: {},
  recipients: [{ address: "a@example.org", domain: "example.org" }],
};
const enc = new TextEncoder();

async function withFakeStore(
  fn: (store: SqliteQueueStore, sync: FakeSync) => Promise<void>,
): Promise<void> {
  const sync = new FakeSync();
  const store = new SqliteQueueStore(new DatabaseSync(":memory:"), { walSync: sync });
  try {
    await fn(store, sync);
  } finally {
    await store.close();
  }
}

async function started(store: SqliteQueueStore, text: string) {
  const w = await store.begin(MESSAGE);
  await w.write(enc.encode(`Subject: ${text}\r\n\r\n${text}\r\n`));
  return w;
}

Deno.test("a lone sender's commit syncs at once and resolves only after the sync (#13)", async () => {
  await withFakeStore(async (store, sync) => {
    const w = await started(store, "lone");
    const commit = track(w.commit());
    // No timer advances here: only immediates and promise jobs run.
    await turns();
    assert.equal(sync.pending.length, 1, "the sync starts without waiting for a group");
    assert.equal(commit.state, "pending", "not durable before the sync returned");
    sync.finish(0);
    await turns();
    assert.equal(commit.state, "resolved");
    assert.equal((await store.list()).length, 1);
  });
});

Deno.test("with nobody else to serve (syncInline), the lone commit syncs on the loop (#13)", async () => {
  const sync = new FakeSync();
  let alone = true;
  const store = new SqliteQueueStore(new DatabaseSync(":memory:"), {
    walSync: sync,
    syncInline: () => alone,
  });
  try {
    const before = sync.syncNowCalls;
    const commit = (await started(store, "alone")).commit();
    // In the same turn as the last write: no setImmediate to wait for when nobody can join.
    assert.equal(sync.syncNowCalls, before + 1, "committed and synced at once");
    await commit;
    assert.equal(sync.pending.length, 0, "no hand-off to a thread");
    alone = false;
    const other = track((await started(store, "crowd")).commit());
    await turns();
    assert.equal(sync.pending.length, 1, "others open: the sync runs off the loop");
    assert.equal(other.state, "pending");
    sync.finish(0);
    await turns();
    assert.equal(other.state, "resolved");
  } finally {
    await store.close();
  }
});

for (const order of [[0, 1], [1, 0]]) {
  Deno.test(`a commit during a running sync gets a sync of its own; finished ${order} (#13)`, async () => {
    await withFakeStore(async (store, sync) => {
      const commits = [track((await started(store, "one")).commit())];
      await turns();
      assert.equal(sync.pending.length, 1);
      commits.push(track((await started(store, "two")).commit()));
      await turns();
      // The running sync may have started before the second COMMIT: it cannot cover it.
      assert.equal(sync.pending.length, 2, "a second sync, not a wait for the first");
      for (const [step, i] of order.entries()) {
        sync.finish(i);
        await turns();
        // Each commit resolves with its own sync, never with the other one.
        const done = order.slice(0, step + 1);
        assert.deepEqual(
          commits.map((c) => c.state),
          [0, 1].map((k) => done.includes(k) ? "resolved" : "pending"),
        );
      }
    });
  });
}

Deno.test("a synchronous transaction (claim) syncs before it returns (#13)", async () => {
  await withFakeStore(async (store, sync) => {
    const w = await started(store, "claimed");
    const commit = track(w.commit());
    await turns();
    const before = sync.syncNowCalls;
    const claim = await store.claim(["example.org"], { owner: "t", leaseSeconds: 60 });
    assert.equal(claim.kind, "claimed");
    assert.equal(sync.syncNowCalls, before + 1);
    sync.finish(0);
    await turns();
    assert.equal(commit.state, "resolved");
  });
});

Deno.test("close() syncs what is pending and settles every waiter (#13)", async () => {
  const sync = new FakeSync();
  const store = new SqliteQueueStore(new DatabaseSync(":memory:"), { walSync: sync });
  const commit = track((await started(store, "closing")).commit());
  await turns();
  assert.equal(commit.state, "pending");
  // The commit's own sync is still running: close must sync again before it settles the commit.
  const before = sync.syncNowCalls;
  await store.close();
  await turns();
  assert.equal(commit.state, "resolved");
  assert.ok(sync.syncNowCalls > before, "close settled a waiter whose sync had not ended");
});

Deno.test("deferWalSync: NORMAL plus a WAL handle for a file database, nothing in memory", async () => {
  await withTempDataDir((dataDir) => {
    const db = openDatabase(dataDir);
    const sync = deferWalSync(db);
    try {
      assert.notEqual(sync, undefined);
      assert.equal(db.prepare("PRAGMA synchronous").get()?.synchronous, 1);
      assert.equal(
        db.prepare("PRAGMA wal_autocheckpoint").get()?.wal_autocheckpoint,
        WAL_CHECKPOINT_PAGES,
      );
      assert.equal(
        db.prepare("PRAGMA journal_size_limit").get()?.journal_size_limit,
        WAL_KEEP_BYTES,
      );
      sync?.syncNow();
    } finally {
      sync?.close();
      db.close();
    }
  });
  const mem = new DatabaseSync(":memory:");
  const before = mem.prepare("PRAGMA synchronous").get()?.synchronous;
  assert.equal(deferWalSync(mem), undefined);
  assert.equal(mem.prepare("PRAGMA synchronous").get()?.synchronous, before);
  mem.close();
});

Deno.test("a file-backed store acknowledges only rows a new connection can read (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir));
    const observer = new DatabaseSync(`${dataDir}/odmr.db`);
    try {
      const writers = await Promise.all(
        Array.from({ length: 5 }, (_, i) => started(store, `m${i}`)),
      );
      await Promise.all(writers.map((w) => w.commit()));
      const n = observer.prepare("SELECT count(*) AS n FROM messages").get()?.n;
      assert.equal(n, 5);
    } finally {
      observer.close();
      await store.close();
    }
  });
});

Deno.test("abort() while the commit waits for its sync leaves the body whole (#13)", async () => {
  await withFakeStore(async (store, sync) => {
    const body = new Uint8Array(70 * 1024).fill(0x61);
    const w = await store.begin(MESSAGE);
    await w.write(body);
    const commit = w.commit();
    await turns();
    // The receiver gives up on the session while the sync runs: the commit decides, not abort.
    await w.abort();
    sync.finish(0);
    await commit;
    await turns();
    let stored = 0;
    for await (const chunk of store.readBody(w.id)) stored += chunk.length;
    assert.equal(stored, body.length);
  });
});
