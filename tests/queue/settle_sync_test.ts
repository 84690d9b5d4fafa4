/**
 * Settlements are committed with synchronous=NORMAL (written to the OS, not fsynced), every
 * ingest commit with FULL (#13): the level each group COMMIT really ran at, read from the
 * connection inside the commit hook; on PostgreSQL, synchronous_commit inside the group.
 */
import assert from "node:assert/strict";
import type { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../../src/queue/db.ts";
import { connectPostgres, type Tx } from "../../src/queue/pg/connect.ts";
import { PgGroupCommit } from "../../src/queue/pg/_group.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { Lease } from "../../src/queue/types.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";

/** SQLite's numbers for PRAGMA synchronous. */
const NORMAL = 1;
const FULL = 2;

interface Commit {
  readonly level: string;
  /** The connection's synchronous while that COMMIT's hook ran. */
  readonly synchronous: number;
}

function synchronousOf(db: DatabaseSync): number {
  const row = db.prepare("PRAGMA synchronous").get();
  return Number(row?.synchronous);
}

async function withLoggedStore(
  fn: (store: SqliteQueueStore, commits: Commit[], db: DatabaseSync) => Promise<void>,
): Promise<void> {
  await withTempDataDir(async (dataDir) => {
    const db = openDatabase(dataDir);
    const commits: Commit[] = [];
    const store = new SqliteQueueStore(db, {
      onGroupCommit: (level) => commits.push({ level, synchronous: synchronousOf(db) }),
    });
    try {
      await fn(store, commits, db);
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

async function recipientIds(lease: Lease): Promise<number[]> {
  const ids: number[] = [];
  for await (const m of lease.messages()) for (const r of m.recipients) ids.push(r.id);
  return ids;
}

/** Queues a message to a@example.org and leases it: the lease and the recipient's id. */
async function leasedRecipient(store: SqliteQueueStore): Promise<{ lease: Lease; id: number }> {
  await put(store, "a@example.org");
  const lease = await claim(store, "example.org");
  const [id] = await recipientIds(lease);
  assert.ok(id !== undefined);
  return { lease, id };
}

Deno.test("an ingest commit runs at FULL, a settlement at NORMAL, then FULL again (#13)", async () => {
  await withLoggedStore(async (store, commits, db) => {
    await put(store, "a@example.org");
    assert.deepEqual(commits, [{ level: "full", synchronous: FULL }]);
    const lease = await claim(store, "example.org");
    const [id] = await recipientIds(lease);
    assert.ok(id !== undefined);
    commits.length = 0;
    await lease.settle([{ recipientId: id, outcome: "delivered", reply: "250 ok" }]);
    assert.deepEqual(commits, [{ level: "normal", synchronous: NORMAL }]);
    // Claims, renewals and everything after the settlement are fsynced again.
    assert.equal(synchronousOf(db), FULL);
    commits.length = 0;
    await put(store, "b@example.org");
    assert.deepEqual(commits, [{ level: "full", synchronous: FULL }]);
    assert.equal(await lease.renew(), true);
    assert.equal(synchronousOf(db), FULL);
    await lease.release();
  });
});

Deno.test("an ingest write meeting an open settlement commits it first and is fsynced itself (#13)", async () => {
  await withLoggedStore(async (store, commits) => {
    const { lease, id } = await leasedRecipient(store);
    commits.length = 0;
    // Same loop turn: the settlement opens a NORMAL transaction, the ingest joins right after.
    const settling = lease.settle([{ recipientId: id, outcome: "deferred", reply: "451 later" }]);
    const ingesting = put(store, "b@other.test");
    await Promise.all([settling, ingesting]);
    assert.deepEqual(commits, [
      { level: "normal", synchronous: NORMAL },
      { level: "full", synchronous: FULL },
    ]);
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
  await withLoggedStore(async (store, commits) => {
    const { lease, id } = await leasedRecipient(store);
    commits.length = 0;
    // Chunk rows first (a FULL transaction opens), then the settlement in the same turn.
    const writer = await store.begin({
      mailFrom: "",
      params: {},
      recipients: [{ address: "c@other.test", domain: "other.test" }],
    });
    await writer.write(new TextEncoder().encode("x".repeat(70 * 1024)));
    const settling = lease.settle([{ recipientId: id, outcome: "delivered", reply: "250 ok" }]);
    await Promise.all([settling, writer.commit()]);
    assert.deepEqual(commits, [{ level: "full", synchronous: FULL }]);
    await lease.release();
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
