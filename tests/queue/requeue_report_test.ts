/**
 * `queue requeue` of a recipient whose failure report was still owed (its settlement marked it
 * pending, and the process died before the report was written, or its write failed): the
 * requeue gives the recipient another chance, so the owed report goes with the failure it was
 * about. Kept, it came on top of what the retry decided: here the recipient expires, its sender
 * gets the expiry's report, and the next maintenance pass sent a second one for the old refusal.
 * Both backends.
 */
import assert from "node:assert/strict";
import { SqliteQueueAdmin } from "../../src/queue/admin.ts";
import type { QueueAdmin } from "../../src/queue/admin.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { PgQueueAdmin } from "../../src/queue/pg/admin.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { QueueStore } from "../../src/queue/types.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { maintenanceOptions, queueMessage } from "../_helpers/queue_fixtures.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

/** The sender's domain is ours: its reports are queued (no foreign-bounce limit). */
const OPTIONS = maintenanceOptions({ isLocalDomain: (d) => d === "local.test" });

async function requeuedThenExpired(store: QueueStore, admin: QueueAdmin): Promise<number[]> {
  const id = await queueMessage(store, { from: "s@local.test", to: ["u@example.org"] });
  const claim = await store.claim(["example.org"], { owner: "s1", leaseSeconds: 60 });
  assert.equal(claim.kind, "claimed");
  const lease = (claim as Extract<typeof claim, { kind: "claimed" }>).lease;
  const [message] = await Array.fromAsync(lease.messages());
  await lease.settle([{
    messageId: id,
    recipientId: message?.recipients[0]?.id ?? -1,
    outcome: "failed",
    reply: "550 5.1.1 no such user",
  }]);
  await lease.release();
  // The report was never written (the process died). The operator gives it another chance.
  assert.equal((await admin.requeue({ kind: "messages", ids: [id] })).recipients, 1);
  // It waits past its age: expired, and its sender gets that report.
  const expiry = await store.maintain({ ...OPTIONS, maxAgeMs: () => -1 });
  assert.equal(expiry.expiredRecipients, 1);
  const next = await store.maintain({ ...OPTIONS, maxAgeMs: () => -1 });
  return [expiry.dsnQueued, next.dsnQueued];
}

Deno.test("SQLite: a requeued recipient whose report was owed gets one report at its expiry, not two", async () => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir));
    const admin = SqliteQueueAdmin.open(dataDir);
    try {
      assert.deepEqual(await requeuedThenExpired(store, admin), [1, 0]);
    } finally {
      await admin.close();
      await store.close();
    }
  });
});

await postgresTest(
  "PostgreSQL: a requeued recipient whose report was owed gets one report at its expiry, not two",
  async (pg) => {
    const url = await pg.createDatabase("requeue_report");
    const store = await PgQueueStore.open({ url }, { nodeId: "n1" });
    const admin = new PgQueueAdmin(store.pool);
    try {
      assert.deepEqual(await requeuedThenExpired(store, admin), [1, 0]);
    } finally {
      await admin.close();
      await store.close();
    }
  },
);
