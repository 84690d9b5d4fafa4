/**
 * (session 18) A settlement whose COMMIT finds no room (a full disk) while the space reserve is
 * kept: the store gives the reserve back and writes the settlement again, so the drain goes on.
 * Before, the settlement failed and the drain stopped after the messages in flight (seen in
 * tests/security/disk_full_claim_test.ts when the claim itself found room in the WAL): the
 * customer had to come back for the rest. The COMMIT's failure is injected (SQLITE_FULL).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { SPACE_RESERVE_FILE, SpaceReserve } from "../../src/queue/space_reserve.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";
import { recordingLogger } from "../_helpers/recording_logger.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

/** The next COMMIT fails as on a full disk. */
function failNextCommit(db: DatabaseSync): void {
  const exec = db.exec.bind(db);
  let armed = true;
  db.exec = (sql: string) => {
    if (armed && sql === "COMMIT") {
      armed = false;
      throw Object.assign(new Error("database or disk is full"), { errcode: 13 });
    }
    return exec(sql);
  };
}

Deno.test("a settlement whose COMMIT finds no room is written again with the reserve's room (session 18)", async () => {
  await withTempDataDir(async (dataDir) => {
    const reserve = new SpaceReserve(dataDir, {
      log: recordingLogger([]),
      bytes: 64 * 1024,
      margin: 64 * 1024,
    });
    reserve.start();
    const db = openDatabase(dataDir);
    const store = new SqliteQueueStore(db, { reserve });
    try {
      await queueMessage(store, { from: "s@x.test", to: ["a@example.org"] });
      await queueMessage(store, { from: "s@x.test", to: ["b@example.org"] });
      const claim = await store.claim(["example.org"], { owner: "t", leaseSeconds: 60 });
      assert(claim.kind === "claimed");
      const settlements = [];
      for await (const m of claim.lease.messages()) {
        const r = m.recipients[0]!;
        settlements.push({ recipientId: r.id, messageId: m.id, outcome: "delivered" as const });
      }
      failNextCommit(db);
      await claim.lease.settle(settlements.map((s) => ({ ...s, reply: "250 ok" })));
      assertEquals(await store.list(), [], "delivered: gone");
      assertEquals(reserve.isKept, false);
      assertEquals((await Deno.stat(`${dataDir}/${SPACE_RESERVE_FILE}`)).size, 0);
      await claim.lease.release();
    } finally {
      await store.close();
    }
  });
});
