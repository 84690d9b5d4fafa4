/**
 * Review wt16-r3: `queue migrate` copies every message of the SQLite queue into PostgreSQL and
 * "can be run again after an interruption (messages already copied are skipped)" (README). It
 * skips by id only and leaves the SQLite queue as it was, so run again once PostgreSQL nodes
 * have delivered a copied message (and deleted it), it copies that message once more and the
 * nodes deliver it a second time.
 */
import assert from "node:assert/strict";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";
import { runMain } from "../_helpers/server_process.ts";
import { inSqliteQueue, migrateTest, settleAll } from "./_migrate.ts";

await migrateTest(
  "queue migrate run again after the nodes delivered a copied message does not queue it again (review wt16-r3)",
  "migrate_rerun",
  async ({ url, configPath, dataDir }) => {
    await inSqliteQueue(
      dataDir,
      (old) => queueMessage(old, { from: "s@sender.test", to: ["u@example.org"] }),
    );
    const first = await runMain(["queue", "migrate", "--config", configPath]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /Copied 1 message/);
    // A node on PostgreSQL hands it over: delivered, gone from the queue.
    const node = await PgQueueStore.open({ url }, { nodeId: "mx-a.test" });
    try {
      assert.equal((await settleAll(node, "example.org", "delivered")).length, 1);
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
  },
);
