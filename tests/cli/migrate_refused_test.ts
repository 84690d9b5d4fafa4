/**
 * A serve killed after a failed WAL sync leaves the rows of messages whose senders were refused
 * (4xx) and send them again; `data_dir/refused_ids` names them, for that serve's next start to
 * delete (src/queue/_refused.ts). `queue migrate` run instead of that start must not copy them:
 * the PostgreSQL nodes would deliver a message its sender has sent again.
 */
import assert from "node:assert/strict";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { REFUSED_IDS_FILE } from "../../src/queue/_refused.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";
import { runMain } from "../_helpers/server_process.ts";
import { inSqliteQueue, migrateTest } from "./_migrate.ts";

await migrateTest(
  "queue migrate does not copy a message whose sender was refused (named in refused_ids)",
  "migrate_refused",
  async ({ url, configPath, dataDir }) => {
    const [kept, refused] = await inSqliteQueue(dataDir, async (old) => [
      await queueMessage(old, { from: "a@sender.test", to: ["u@example.org"] }),
      await queueMessage(old, { from: "b@sender.test", to: ["u@example.org"] }),
    ]);
    // As the killed serve left it: the refused message's rows, and its id in the file.
    await Deno.writeTextFile(`${dataDir}/${REFUSED_IDS_FILE}`, `${refused}\n`);
    const run = await runMain(["queue", "migrate", "--config", configPath]);
    assert.equal(run.code, 0, run.stderr);
    const node = await PgQueueStore.open({ url }, { nodeId: "mx-a.test" });
    try {
      assert.deepEqual(
        (await node.list()).map((m) => m.id),
        [kept],
        "the refused message is copied: the nodes deliver it, and its sender sent it again",
      );
    } finally {
      await node.close();
    }
    assert.match(
      run.stdout,
      /^Copied 1 message\(s\) \(0 already copied; 1 refused to its sender, left out\)/,
    );
  },
);
