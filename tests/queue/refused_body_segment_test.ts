/**
 * A refused message whose rows stayed (its WAL sync failed, then its clean-up), with its body in
 * a segment file it shares with a message that was acknowledged before: serve is killed (kill -9)
 * and started again. The start deletes the refused rows (`refused_ids`, src/queue/_refused.ts)
 * and counts each segment's bodies from the rows left; the refused body must then not be counted
 * out a second time, or the segment goes while the acknowledged message still needs it, and that
 * message can never be delivered (its body is gone). Faults: a `FakeSync` whose sync fails, and
 * `failingExec` on the store's own connection for the clean-up's `BEGIN IMMEDIATE`.
 */
import assert from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { failingExec } from "../_helpers/failing_exec.ts";
import { FakeSync, turns } from "../_helpers/fake_wal_sync.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import {
  maintenanceOptions,
  patternBytes,
  queueMessage,
  rcpt,
  segmentOf,
} from "../_helpers/queue_fixtures.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

const DOMAIN = "one.test";
/** In a body file (over a chunk), under the size that gets a segment of its own. */
const BODY_BYTES = 100_000;

/** Waits (bounded) until `n` syncs were started. */
async function syncStarted(sync: FakeSync, n: number): Promise<void> {
  // Body files are made and synced on threads: real time passes, bounded.
  for (let i = 0; i < 500 && sync.pending.length < n; i++) {
    await turns(1);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(sync.pending.length, n);
}

Deno.test("after a kill -9, the start that removes a refused message keeps the body segment it shared with an acknowledged one (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const sync = new FakeSync();
    const db = openDatabase(dataDir);
    const store = new SqliteQueueStore(db, { walSync: sync });
    const faults = failingExec(db);
    const keptBody = patternBytes(BODY_BYTES, 3);
    const queued = queueMessage(store, { to: [`a@${DOMAIN}`], body: keptBody });
    await syncStarted(sync, 1);
    sync.finish(0);
    const kept = await queued;
    const writer = await store.begin({
      mailFrom: "",
      params: {},
      recipients: [rcpt(`b@${DOMAIN}`)],
    });
    await writer.write(patternBytes(BODY_BYTES, 4));
    const committing = writer.commit();
    committing.catch(() => {});
    // The COMMIT went through; its sync fails; the clean-up of its rows cannot begin.
    await syncStarted(sync, 2);
    faults.plan.push("BEGIN IMMEDIATE");
    sync.finish(1, new Error("EIO"));
    await assert.rejects(committing, /Cannot sync queue database: EIO/);
    assert.equal(segmentOf(dataDir, writer.id), segmentOf(dataDir, kept), "one segment");
    try {
      // Killed now. serve starts again: the refused rows go, then a maintenance pass runs.
      const next = new SqliteQueueStore(openDatabase(dataDir));
      try {
        assert.deepEqual((await next.list()).map((m) => m.id), [kept]);
        await next.maintain(maintenanceOptions());
        assert.deepEqual(
          await collectBytes(next.readBody(kept)),
          keptBody,
          "the acknowledged message's body is still there",
        );
      } finally {
        await next.close();
      }
    } finally {
      // The killed process's connection (its close deletes nothing any more).
      await assert.rejects(store.close(), /Cannot sync queue database: EIO/);
    }
  });
});
