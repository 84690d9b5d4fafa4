/**
 * Settlements are committed without a sync (written to the OS, not fsynced), every ingest
 * commit is synced before it is acknowledged (#13): each group COMMIT's level from the commit
 * hook, and the WAL syncs that really ran (the store's WalSync, counted) — serve's connection
 * commits at synchronous=NORMAL and syncs the WAL itself (_wal_sync.ts); on PostgreSQL,
 * synchronous_commit inside the group.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../../src/queue/db.ts";
import { connectPostgres, type Tx } from "../../src/queue/pg/connect.ts";
import { PgGroupCommit } from "../../src/queue/pg/_group.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { deferWalSync, type WalSync } from "../../src/queue/_wal_sync.ts";
import type { Lease } from "../../src/queue/types.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { FakeSync, track, turns } from "../_helpers/fake_wal_sync.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";

/** What happened, in order: a group COMMIT at its level, or a WAL sync (async or on the loop). */
type Event = "commit full" | "commit normal" | "sync";

async function withLoggedStore(
  fn: (store: SqliteQueueStore, events: Event[]) => Promise<void>,
): Promise<void> {
  await withTempDataDir(async (dataDir) => {
    const db: DatabaseSync = openDatabase(dataDir);
    const real = deferWalSync(db);
    if (real === undefined) throw new Error("a file database in WAL mode defers its syncs");
    const events: Event[] = [];
    const counted: WalSync = {
      sync: () => {
        events.push("sync");
        return real.sync();
      },
      syncNow: () => {
        events.push("sync");
        real.syncNow();
      },
      close: () => real.close(),
    };
    const store = new SqliteQueueStore(db, {
      walSync: counted,
      // The chunk rows of a body open a FULL transaction (a body file would not).
      bodyFiles: false,
      onGroupCommit: (level) => events.push(`commit ${level}`),
    });
    events.length = 0;
    try {
      await fn(store, events);
    } finally {
      await store.close();
    }
  });
}

function put(store: SqliteQueueStore, address: string): Promise<string> {
  return queueMessage(store, { from: "s@example.net", to: [address] });
}

async function claim(store: SqliteQueueStore, domain: string): Promise<Lease> {
  const result = await store.claim([domain], { owner: "session-a", leaseSeconds: 60 });
  if (result.kind !== "claimed") throw new Error(`claim: ${result.kind}`);
  return result.lease;
}

/** A recipient as a settlement names it. */
interface RecipientKey {
  readonly recipientId: number;
  readonly messageId: string;
}

async function recipientIds(lease: Lease): Promise<RecipientKey[]> {
  const ids: RecipientKey[] = [];
  for await (const m of lease.messages()) {
    for (const r of m.recipients) ids.push({ recipientId: r.id, messageId: m.id });
  }
  return ids;
}

/** Queues a message to a@example.org and leases it: the lease and the recipient's key. */
async function leasedRecipient(
  store: SqliteQueueStore,
): Promise<{ lease: Lease; id: RecipientKey }> {
  await put(store, "a@example.org");
  const lease = await claim(store, "example.org");
  const [id] = await recipientIds(lease);
  assert.ok(id !== undefined);
  return { lease, id };
}

Deno.test("an ingest commit is synced, a settlement not, then ingest synced again (#13)", async () => {
  await withLoggedStore(async (store, events) => {
    await put(store, "a@example.org");
    assert.deepEqual(events, ["commit full", "sync"]);
    const lease = await claim(store, "example.org");
    const [id] = await recipientIds(lease);
    assert.ok(id !== undefined);
    events.length = 0;
    await lease.settle([{ ...id, outcome: "delivered", reply: "250 ok" }]);
    assert.deepEqual(events, ["commit normal"]);
    events.length = 0;
    await put(store, "b@example.org");
    assert.deepEqual(events, ["commit full", "sync"]);
    // Claims and renewals are synced before they return.
    events.length = 0;
    assert.equal(await lease.renew(), true);
    assert.deepEqual(events, ["sync"]);
    await lease.release();
  });
});

Deno.test("an ingest write meeting an open settlement raises it to full: one COMMIT, fsynced (#13)", async () => {
  await withLoggedStore(async (store, events) => {
    const { lease, id } = await leasedRecipient(store);
    events.length = 0;
    // Same loop turn: the settlement opens a NORMAL transaction, the ingest joins right after.
    const settling = lease.settle([{ ...id, outcome: "deferred", reply: "451 later" }]);
    const ingesting = put(store, "b@other.test");
    await Promise.all([settling, ingesting]);
    // Before: the settlement was committed on its own first (one COMMIT more per 64 KiB chunk).
    assert.deepEqual(events, ["commit full", "sync"]);
    await lease.release();
    // Both are stored.
    const queued = await store.list({});
    assert.deepEqual(queued.map((m) => m.recipients[0]?.address).sort(), [
      "a@example.org",
      "b@other.test",
    ]);
  });
});

Deno.test("a settlement joining an open ingest transaction is fsynced with it (#13)", async () => {
  await withLoggedStore(async (store, events) => {
    const { lease, id } = await leasedRecipient(store);
    events.length = 0;
    // Chunk rows first (a FULL transaction opens), then the settlement in the same turn.
    const writer = await store.begin({
      mailFrom: "",
      params: {},
      recipients: [{ address: "c@other.test", domain: "other.test" }],
    });
    await writer.write(new TextEncoder().encode("x".repeat(70 * 1024)));
    const settling = lease.settle([{ ...id, outcome: "delivered", reply: "250 ok" }]);
    await Promise.all([settling, writer.commit()]);
    assert.deepEqual(events, ["commit full", "sync"]);
    await lease.release();
  });
});

Deno.test("a settlement raised to full by a body chunk is told only after the sync (#13)", async () => {
  const sync = new FakeSync();
  const levels: string[] = [];
  let alone = true;
  const store = new SqliteQueueStore(new DatabaseSync(":memory:"), {
    walSync: sync,
    // The set-up syncs on the loop; the transaction under test syncs off it, finished below.
    syncInline: () => alone,
    onGroupCommit: (level) => levels.push(level),
  });
  try {
    const { lease, id } = await leasedRecipient(store);
    const writer = await store.begin({
      mailFrom: "",
      params: {},
      recipients: [{ address: "c@other.test", domain: "other.test" }],
    });
    await turns();
    levels.length = 0;
    alone = false;
    // The settlement opens a NORMAL transaction; a full 64 KiB chunk joins it in the same turn.
    const settled = track(
      lease.settle([{ ...id, outcome: "delivered", reply: "250 ok" }]),
    );
    await writer.write(new Uint8Array(64 * 1024));
    await turns();
    assert.deepEqual(levels, ["full"], "one COMMIT, at full");
    assert.equal(sync.pending.length, 1, "its sync");
    assert.equal(settled.state, "pending", "told before the sync of its transaction");
    sync.finish(0);
    await turns();
    assert.equal(settled.state, "resolved");
    await writer.abort();
    await lease.release();
  } finally {
    await store.close();
  }
});

Deno.test("without a WalSync (no WAL) every COMMIT stays at synchronous=FULL, settlements too", async () => {
  await withTempDataDir(async (dataDir) => {
    const db = openDatabase(dataDir);
    db.exec("PRAGMA journal_mode = DELETE");
    assert.equal(deferWalSync(db), undefined);
    const levels: string[] = [];
    const store = new SqliteQueueStore(db, { onGroupCommit: (level) => levels.push(level) });
    try {
      const { lease, id } = await leasedRecipient(store);
      await lease.settle([{ ...id, outcome: "delivered", reply: "250 ok" }]);
      assert.deepEqual(levels, ["full", "normal"]);
      assert.equal(db.prepare("PRAGMA synchronous").get()?.synchronous, 2);
      await lease.release();
    } finally {
      await store.close();
    }
  });
});

await postgresTest(
  "PostgreSQL: a group of settlements only commits asynchronously (#13)",
  async (pg) => {
    const sql = await connectPostgres({ url: await pg.createDatabase("settle_sync"), max: 1 });
    const group = new PgGroupCommit(sql);
    /** The transaction's synchronous_commit, seen from inside the write. */
    const seen = (into: string[]) => async (tx: Tx) => {
      const [row] = await tx`SHOW synchronous_commit`;
      into.push(String(row?.synchronous_commit));
    };
    try {
      const settle: string[] = [];
      await group.run(seen(settle), "normal");
      assert.deepEqual(settle, ["off"]);
      const ingest: string[] = [];
      await group.run(seen(ingest));
      assert.deepEqual(ingest, ["on"]);
      // In one group with an ingest write, the settlement is committed synchronously too.
      const mixed: string[] = [];
      await Promise.all([group.run(seen(mixed), "normal"), group.run(seen(mixed))]);
      assert.deepEqual(mixed, ["on", "on"]);
      // SET LOCAL ends with its transaction: the connection is back to synchronous commits.
      const [after] = await sql`SHOW synchronous_commit`;
      assert.equal(after?.synchronous_commit, "on");
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
);
