/**
 * Review wt16-r3: `queue migrate` copies every message of the SQLite queue into PostgreSQL and
 * "can be run again after an interruption (messages already copied are skipped)" (README). It
 * skips by id only and leaves the SQLite queue as it was, so run again once PostgreSQL nodes
 * have delivered a copied message (and deleted it), it copies that message once more and the
 * nodes deliver it a second time.
 */
import assert from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { postgresNodeConfig } from "../_helpers/postgres_nodes.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";
import { removeTestFiles, runMain, writeTestConfig } from "../_helpers/server_process.ts";

await postgresTest(
  "queue migrate run again after the nodes delivered a copied message does not queue it again (review wt16-r3)",
  async (pg) => {
    const url = await pg.createDatabase("migrate_rerun");
    const { configPath, dataDir } = await writeTestConfig({
      config: postgresNodeConfig("mx-a.test", url),
    });
    try {
      const old = new SqliteQueueStore(openDatabase(dataDir));
      await queueMessage(old, { from: "s@sender.test", to: ["u@example.org"] });
      await old.close();
      const first = await runMain(["queue", "migrate", "--config", configPath]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /Copied 1 message/);
      // A node on PostgreSQL hands it over: delivered, gone from the queue.
      const node = await PgQueueStore.open({ url }, { nodeId: "mx-a.test" });
      try {
        const c = await node.claim(["example.org"], { owner: "s1", leaseSeconds: 60 });
        assert.equal(c.kind, "claimed");
        const lease = (c as Extract<typeof c, { kind: "claimed" }>).lease;
        const [m] = await Array.fromAsync(lease.messages());
        assert.ok(m !== undefined);
        await lease.settle(
          m.recipients.map((r) => ({
            messageId: m.id,
            recipientId: r.id,
            outcome: "delivered",
            reply: "250 ok",
          })),
        );
        await lease.release();
        assert.equal((await node.list()).length, 0);
        // The operator runs the migration again ("can be run again").
        await runMain(["queue", "migrate", "--config", configPath]);
        assert.equal(
          (await node.list()).length,
          0,
          "the delivered message is queued again: the customer gets it twice",
        );
      } finally {
        await node.close();
      }
    } finally {
      await removeTestFiles({ dataDir, configPath });
    }
  },
);
