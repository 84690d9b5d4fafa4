/**
 * Schema step 5 (the outbound queue) on a file made by the previous version: the mail already
 * waiting keeps its counters and becomes route "atrn"; new mx-route mail is counted apart.
 */
import assert from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { oldQueue } from "../_helpers/queue_fixtures.ts";

Deno.test("schema step 5 keeps waiting mail as route atrn with its usage and gauges", async () => {
  await withTempDataDir(async (dataDir) => {
    oldQueue(
      dataDir,
      4,
      "INSERT INTO messages (id, received_at, mail_from, size, params) " +
        "VALUES ('0000000001AAAAAAAA', 1000, 's@x.test', 10, '{}')",
      "INSERT INTO recipients (message_id, address, domain) VALUES " +
        "('0000000001AAAAAAAA', 'a@one.test', 'one.test')",
    );
    const store = new SqliteQueueStore(openDatabase(dataDir), { now: () => 5000 });
    try {
      assert.deepEqual(await store.usage("one.test"), { messages: 1, bytes: 10 });
      assert.deepEqual(await store.domainStats(), [
        { domain: "one.test", route: "atrn", messages: 1, bytes: 10, oldestReceivedAt: 1000 },
      ]);
      const [message] = await store.list();
      assert.equal(message?.recipients[0]?.route, "atrn");
      assert.equal(message?.recipients[0]?.nextAttemptAt, undefined);
      const w = await store.begin({
        mailFrom: "s@x.test",
        params: {},
        recipients: [{ address: "b@one.test", domain: "one.test", route: "mx" }],
      });
      await w.write(new Uint8Array(7));
      await w.commit();
      assert.deepEqual(await store.usage("one.test"), { messages: 1, bytes: 10 });
      assert.deepEqual((await store.domainStats()).map((s) => [s.route, s.messages, s.bytes]), [
        ["atrn", 1, 10],
        ["mx", 1, 7],
      ]);
      assert.equal(await store.delete([w.id]), 1);
      assert.deepEqual((await store.domainStats()).map((s) => s.route), ["atrn"]);
    } finally {
      await store.close();
    }
  });
});
