/**
 * `queue migrate` refuses while a SQLite `serve` runs on the data directory (it holds its lock,
 * src/queue/serve_lock.ts): that serve would deliver the messages migrate copies, and the
 * PostgreSQL nodes would deliver them again. Refused with one `error:` line naming the serve,
 * exit 1, nothing copied; once that serve is stopped, the same command copies everything.
 */
import assert from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { postgresNodeConfig } from "../_helpers/postgres_nodes.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";
import {
  removeTestFiles,
  runMain,
  startServer,
  writeTestConfig,
} from "../_helpers/server_process.ts";

await postgresTest(
  "queue migrate refuses (exit 1, one error line) while a SQLite serve runs on the data_dir, and copies nothing",
  async (pg) => {
    const url = await pg.createDatabase("migrate_lock");
    const old = await startServer();
    const { configPath } = await writeTestConfig({
      dataDir: old.dataDir,
      configPath: `${old.dataDir}.pg.yaml`,
      config: postgresNodeConfig("mx-a.test", url),
    });
    try {
      // Queued beside the running serve (WAL), as any `queue` command may.
      const beside = new SqliteQueueStore(openDatabase(old.dataDir), { removeOrphans: false });
      const id = await queueMessage(beside, { from: "s@sender.test", to: ["u@example.org"] });
      await beside.close();
      const refused = await runMain(["queue", "migrate", "--config", configPath]);
      assert.equal(refused.code, 1, refused.stdout);
      assert.equal(refused.stdout, "");
      assert.equal(refused.stderr.trimEnd().split("\n").length, 1, refused.stderr);
      assert.ok(
        refused.stderr.startsWith(
          `error: Cannot migrate: a serve (pid ${old.pid}) is running on data_dir ` +
            `"${old.dataDir}"`,
        ),
        refused.stderr,
      );
      assert.equal(await old.stop(), 0, old.logs());
      const node = await PgQueueStore.open({ url }, { nodeId: "mx-a.test" });
      try {
        assert.equal((await node.list()).length, 0, "nothing copied while serve ran");
        const copied = await runMain(["queue", "migrate", "--config", configPath]);
        assert.equal(copied.code, 0, copied.stderr);
        assert.match(copied.stdout, /^Copied 1 message\(s\) \(0 already copied\)/);
        assert.deepEqual((await node.list()).map((m) => m.id), [id]);
      } finally {
        await node.close();
      }
    } finally {
      await old.kill9();
      await removeTestFiles(old);
      await Deno.remove(configPath).catch(() => {});
    }
  },
);
