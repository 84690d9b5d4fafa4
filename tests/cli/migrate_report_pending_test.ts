/**
 * `queue migrate` and a failure report still owed: a recipient settled failed has its report
 * pending (`report_pending`) until the report is queued; a process that died in between leaves
 * it to the next maintenance pass. Moved to PostgreSQL in that state, the first pass of the
 * nodes queues the report, once.
 */
import assert from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { postgresNodeConfig } from "../_helpers/postgres_nodes.ts";
import { maintenanceOptions, queueMessage } from "../_helpers/queue_fixtures.ts";
import { removeTestFiles, runMain, writeTestConfig } from "../_helpers/server_process.ts";

const REPLY = "550 5.1.1 <u@example.org>: no such user";

await postgresTest(
  "queue migrate carries a failure report still owed: the nodes' first maintenance pass queues it, once",
  async (pg) => {
    const url = await pg.createDatabase("migrate_report_pending");
    const { configPath, dataDir } = await writeTestConfig({
      config: postgresNodeConfig("mx-a.test", url),
    });
    try {
      const old = new SqliteQueueStore(openDatabase(dataDir));
      const id = await queueMessage(old, { from: "s@local.test", to: ["u@example.org"] });
      // Delivery fails for good; the process dies before the report is queued.
      const c = await old.claim(["example.org"], { owner: "s1", leaseSeconds: 60 });
      assert.equal(c.kind, "claimed");
      const lease = (c as Extract<typeof c, { kind: "claimed" }>).lease;
      const [m] = await Array.fromAsync(lease.messages());
      assert.equal(m?.id, id);
      await lease.settle(
        m.recipients.map((r) => ({
          messageId: m.id,
          recipientId: r.id,
          outcome: "failed",
          reply: REPLY,
        })),
      );
      await lease.release();
      await old.close();
      const run = await runMain(["queue", "migrate", "--config", configPath]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^Copied 1 message\(s\)/);
      const node = await PgQueueStore.open({ url }, { nodeId: "mx-a.test" });
      try {
        const options = maintenanceOptions({ isLocalDomain: (d) => d === "local.test" });
        const pass = await node.maintain(options);
        assert.equal(pass.dsnQueued, 1, "the report owed before the move is never sent");
        const reports = (await node.list()).filter((q) => q.mailFrom === "");
        assert.deepEqual(
          reports.map((q) => q.recipients.map((r) => [r.address, r.notify])),
          [[["s@local.test", "NEVER"]]],
        );
        // The copied recipient stays failed, as it was.
        const copied = (await node.list()).find((q) => q.id === id);
        assert.deepEqual(copied?.recipients.map((r) => [r.status, r.lastReply]), [[
          "failed",
          REPLY,
        ]]);
        // Once: not again from the next pass.
        assert.equal((await node.maintain(options)).dsnQueued, 0);
      } finally {
        await node.close();
      }
    } finally {
      await removeTestFiles({ dataDir, configPath });
    }
  },
);
