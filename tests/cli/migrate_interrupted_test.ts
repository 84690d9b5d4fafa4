/**
 * `queue migrate` cut off part-way, then run again after the PostgreSQL nodes delivered what the
 * first run copied: the second run copies the rest, and nothing the first run copied comes back
 * (each copied id is kept in `migrated_messages`, src/queue/pg/_import.ts). The cut is real:
 * the second message's body file is out of the way, so reading it fails within its transaction.
 */
import assert from "node:assert/strict";
import { rename } from "node:fs/promises";
import { BODY_DIR } from "../../src/queue/_body_files.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { patternBytes, queueMessage, segmentOf } from "../_helpers/queue_fixtures.ts";
import { runMain } from "../_helpers/server_process.ts";
import { inSqliteQueue, migrateTest, settleAll } from "./_migrate.ts";

await migrateTest(
  "queue migrate cut off part-way, run again after the nodes delivered the first copy: copies the rest and not that one again",
  "migrate_cut",
  async ({ url, configPath, dataDir }) => {
    // Listed oldest first: the short one, then one whose 200 KB body is in a file.
    let at = Date.now() - 60_000;
    const bigBody = patternBytes(200_000, 7);
    const [short, big] = await inSqliteQueue(dataDir, async (old) => {
      const short = await queueMessage(old, { from: "a@sender.test", to: ["u@example.org"] });
      at += 1000;
      const big = await queueMessage(old, {
        from: "b@sender.test",
        to: ["u@example.org"],
        body: bigBody,
      });
      return [short, big];
    }, { now: () => at });
    const segment = `${dataDir}/${BODY_DIR}/${segmentOf(dataDir, big)}`;
    await rename(segment, `${segment}.away`);
    const cut = await runMain(["queue", "migrate", "--config", configPath]);
    assert.equal(cut.code, 1, cut.stdout);
    assert.match(cut.stderr, /^error: Cannot migrate the queue: /);
    await rename(`${segment}.away`, segment);
    const node = await PgQueueStore.open({ url }, { nodeId: "mx-a.test" });
    try {
      assert.deepEqual((await node.list()).map((m) => m.id), [short]);
      // A node hands the copied one over: delivered, gone from the queue.
      assert.deepEqual(await settleAll(node, "example.org", "delivered"), [short]);
      assert.equal((await node.list()).length, 0);
      // Run again: the rest is copied, the delivered one stays delivered.
      const again = await runMain(["queue", "migrate", "--config", configPath]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /^Copied 1 message\(s\) \(1 already copied\)/);
      assert.deepEqual((await node.list()).map((m) => m.id), [big]);
      assert.deepEqual(await collectBytes(node.readBody(big)), bigBody);
      // And once more: nothing left to copy.
      const third = await runMain(["queue", "migrate", "--config", configPath]);
      assert.match(third.stdout, /^Copied 0 message\(s\) \(2 already copied\)/);
      assert.equal((await node.list()).length, 1);
    } finally {
      await node.close();
    }
  },
);
