/**
 * `queue migrate` and what a SQLite queue owes its senders beside its rows as listed: a failure
 * report still pending (`report_pending`: a recipient settled failed, the process died before
 * the report was queued) is queued by the nodes' first maintenance pass, once; a delay notice
 * already sent (`delay_notified`) is not sent again.
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

await postgresTest(
  "queue migrate keeps that a message had its delay notice: the nodes send no second one",
  async (pg) => {
    const url = await pg.createDatabase("migrate_delay_notified");
    const { configPath, dataDir } = await writeTestConfig({
      config: postgresNodeConfig("mx-a.test", url),
    });
    try {
      // Five hours on its way to far.test's MX: past the 4-hour notice, not yet expired.
      const at = Date.now() - 5 * 3_600_000;
      const old = new SqliteQueueStore(openDatabase(dataDir), { now: () => at });
      const id = await queueMessage(old, {
        from: "s@local.test",
        to: [{ address: "a@far.test", domain: "far.test", route: "mx" }],
      });
      await old.close();
      const options = maintenanceOptions({ isLocalDomain: (d) => d === "local.test" });
      const again = new SqliteQueueStore(openDatabase(dataDir));
      assert.equal((await again.maintain(options)).delayNotices, 1);
      await again.close();
      const run = await runMain(["queue", "migrate", "--config", configPath]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^Copied 2 message\(s\)/);
      const node = await PgQueueStore.open({ url }, { nodeId: "mx-a.test" });
      try {
        assert.equal(
          (await node.maintain(options)).delayNotices,
          0,
          "the sender is told a second time that the message is delayed",
        );
        const notices = (await node.list()).filter((q) => q.id !== id);
        assert.equal(notices.length, 1);
      } finally {
        await node.close();
      }
    } finally {
      await removeTestFiles({ dataDir, configPath });
    }
  },
);
