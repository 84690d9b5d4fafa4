/**
 * `queue migrate` carries who submitted a message into PostgreSQL: the outbound signer needs it
 * to sign a user's `MAIL FROM:<>` mail (its bounces, auto-replies) by the From domain.
 */
import assert from "node:assert/strict";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";
import { runMain } from "../_helpers/server_process.ts";
import { inSqliteQueue, migrateTest } from "./_migrate.ts";

await migrateTest(
  "queue migrate keeps the submitter of submitted mail, and none for received mail",
  "migrate_submitter",
  async ({ url, configPath, dataDir }) => {
    const [submitted, received] = await inSqliteQueue(dataDir, async (old) => [
      await queueMessage(old, {
        from: "",
        submitter: "alice",
        to: [rcpt("bob@dest.test", { route: "mx" })],
      }),
      await queueMessage(old, { from: "s@sender.test", to: ["u@example.org"] }),
    ]);
    const run = await runMain(["queue", "migrate", "--config", configPath]);
    assert.equal(run.code, 0, run.stderr);
    const node = await PgQueueStore.open({ url }, { nodeId: "mx-a.test" });
    try {
      assert.equal((await node.get(submitted ?? ""))?.submitter, "alice");
      const other = await node.get(received ?? "");
      assert.ok(other);
      assert.equal(other.submitter, undefined);
    } finally {
      await node.close();
    }
  },
);
