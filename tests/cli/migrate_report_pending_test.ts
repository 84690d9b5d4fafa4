/**
 * `queue migrate` and what a SQLite queue owes its senders beside its rows as listed: a failure
 * report still pending (`report_pending`: a recipient settled failed, the process died before
 * the report was queued) is queued by the nodes' first maintenance pass, once; a delay notice
 * already sent (`delay_notified`) is not sent again.
 */
import assert from "node:assert/strict";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { maintenanceOptions, queueMessage } from "../_helpers/queue_fixtures.ts";
import { runMain } from "../_helpers/server_process.ts";
import { inSqliteQueue, migrateTest, settleAll } from "./_migrate.ts";

const REPLY = "550 5.1.1 <u@example.org>: no such user";
const OPTIONS = maintenanceOptions({ isLocalDomain: (d) => d === "local.test" });

await migrateTest(
  "queue migrate carries a failure report still owed: the nodes' first maintenance pass queues it, once",
  "migrate_report_pending",
  async ({ url, configPath, dataDir }) => {
    // Delivery fails for good; the process dies before the report is queued.
    const id = await inSqliteQueue(dataDir, async (old) => {
      const id = await queueMessage(old, { from: "s@local.test", to: ["u@example.org"] });
      assert.deepEqual(await settleAll(old, "example.org", "failed", REPLY), [id]);
      return id;
    });
    const run = await runMain(["queue", "migrate", "--config", configPath]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^Copied 1 message\(s\)/);
    const node = await PgQueueStore.open({ url }, { nodeId: "mx-a.test" });
    try {
      const pass = await node.maintain(OPTIONS);
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
      assert.equal((await node.maintain(OPTIONS)).dsnQueued, 0);
    } finally {
      await node.close();
    }
  },
);

await migrateTest(
  "queue migrate keeps that a message had its delay notice: the nodes send no second one",
  "migrate_delay_notified",
  async ({ url, configPath, dataDir }) => {
    // Five hours on its way to far.test's MX: past the 4-hour notice, not yet expired.
    const at = Date.now() - 5 * 3_600_000;
    const id = await inSqliteQueue(
      dataDir,
      (old) =>
        queueMessage(old, {
          from: "s@local.test",
          to: [{ address: "a@far.test", domain: "far.test", route: "mx" }],
        }),
      { now: () => at },
    );
    const first = await inSqliteQueue(dataDir, async (again) => await again.maintain(OPTIONS));
    assert.equal(first.delayNotices, 1);
    const run = await runMain(["queue", "migrate", "--config", configPath]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^Copied 2 message\(s\)/);
    const node = await PgQueueStore.open({ url }, { nodeId: "mx-a.test" });
    try {
      assert.equal(
        (await node.maintain(OPTIONS)).delayNotices,
        0,
        "the sender is told a second time that the message is delayed",
      );
      const notices = (await node.list()).filter((q) => q.id !== id);
      assert.equal(notices.length, 1);
    } finally {
      await node.close();
    }
  },
);
