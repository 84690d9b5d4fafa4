/**
 * An outbound batch whose settlement could not be recorded (a full disk: the settle COMMIT
 * fails while the smaller lease write still fits; PostgreSQL past its deadline) leaves the
 * message it sent due. It released the destination's lease as usual, and the worker, woken by
 * the batch's end, claimed the destination again at once: the MX got the same message again,
 * then again, as fast as it answered, for as long as settlements failed. Now such a batch keeps
 * its lease, so the destination is claimed again only once the lease has run out
 * (`queue.lease_time`): one more copy per lease time at worst. A real SQLite queue whose lease
 * fails its settlements; the MX is the capture server on 127.x.y.96:25 (loopback()), found
 * through dnsmasq.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { runBatch } from "../../src/outbound/_batch.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { Lease } from "../../src/queue/types.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { deliveryOptions, loopback, startMxDns } from "../_helpers/outbound_world.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";
import { queueMx, runningSignals } from "./_batch_fixtures.ts";

const LEASE_SECONDS = 60;

await toolTest("outbound: a batch whose settlement failed keeps its destination leased", [
  "dnsmasq",
], async () => {
  if (!canBindPort25("batch_settle_failed_hold_test", "127.x.y.96")) return;
  await using dns = await startMxDns({ "full.test": loopback(96) });
  const mx = await startCaptureServer({ host: loopback(96), port: 25 });
  try {
    await withTempDataDir(async (dir) => {
      const store = new SqliteQueueStore(openDatabase(dir));
      try {
        await queueMx(store, "u@full.test", {
          from: "alice@example.org",
          body: "Subject: once\r\n\r\nonce\r\n",
        });
        const claimedAt = Date.now();
        const real = await store.claimOutbound({
          owner: "test",
          leaseSeconds: LEASE_SECONDS,
          now: claimedAt,
        });
        assert(real !== undefined, "the destination is due");
        // The queue takes reads and the lease, not the settlement (its COMMIT finds no room).
        const lease: Lease = {
          domains: real.domains,
          messages: () => real.messages(),
          readBody: (id) => real.readBody(id),
          renew: () => real.renew(),
          settle: () =>
            Promise.reject(new Error("Cannot commit queue transaction: database or disk is full")),
          release: () => real.release(),
        };
        const events: RecordedEvent[] = [];
        await runBatch(lease, {
          log: recordingLogger(events),
          delivery: deliveryOptions(dns),
          leaseSeconds: LEASE_SECONDS,
        }, runningSignals());
        assertEquals(mx.messages.length, 1);
        assertEquals(events.filter((e) => e.event === "settle_failed").length, 1);
        // The worker, woken by the batch's end, finds nothing to claim: not the same message again.
        const now = Date.now();
        assertEquals(
          await store.claimOutbound({ owner: "worker", leaseSeconds: LEASE_SECONDS, now }),
          undefined,
        );
        // Once the lease has run out, the destination (its message still due) is claimed again.
        const later = await store.claimOutbound({
          owner: "worker",
          leaseSeconds: LEASE_SECONDS,
          now: now + LEASE_SECONDS * 1000 + 1,
        });
        assertEquals(later?.domains, ["full.test"]);
        await later?.release();
      } finally {
        await store.close();
      }
    });
  } finally {
    await mx.close();
  }
});
