/**
 * A `queue` command failing at run time names where the queue is: with PostgreSQL the
 * database, not the data_dir (which holds nothing of the queue then, and sent operators
 * looking at the wrong place). The failure here is real: a table the command reads is gone.
 */
import assert from "node:assert/strict";
import { queueCommand } from "../../src/cli/queue.ts";
import { connectPostgres } from "../../src/queue/pg/connect.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { recordingIo } from "./_io.ts";

await postgresTest(
  "a queue command failing on PostgreSQL names PostgreSQL, not the data_dir",
  async (pg) => {
    const url = await pg.createDatabase("queue_error_where");
    await (await PgQueueStore.open({ url }, { nodeId: "setup" })).close();
    const sql = await connectPostgres({ url, max: 1 });
    try {
      await sql.unsafe("DROP TABLE messages CASCADE");
    } finally {
      await sql.end({ timeout: 5 });
    }
    await withTempDataDir(async (dataDir) => {
      const io = recordingIo({
        dataDir,
        storage: { backend: "postgres", postgres: { url, passwordFile: undefined } },
      });
      assert.equal(await queueCommand(["list"], io), 1);
      assert.match(
        io.err,
        /^error: Cannot use the queue in PostgreSQL "odmr@127\.0\.0\.1:\d+\/queue_error_where": /,
      );
      assert.ok(!io.err.includes(dataDir), io.err);
    });
  },
);
