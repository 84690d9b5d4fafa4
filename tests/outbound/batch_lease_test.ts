/**
 * The outbound batch and its lease (src/outbound/_batch.ts), as the ATRN drain keeps its own
 * (src/odmr/drain.ts): a lease whose renewals keep failing stops the batch before its next
 * message once a renewal is overdue (the queue is not answering: the lease runs out, another node
 * takes the destination and sends what this one sends, and nothing this one sends can be settled
 * anyway); and the lease is released only after a renewal still on its way has come back (a
 * renewal reaching the queue after the release would hold the destination again). A lease of
 * the test's own over a capture server on 127.x.y.82:25 found through dnsmasq (loopback(): this
 * process's own addresses). Time is the test's clock (`now`) for the first case; the second
 * waits for the batch's renewal timer (one second) and holds that renewal for half a second.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { runBatch } from "../../src/outbound/_batch.ts";
import type { Lease, Settlement } from "../../src/queue/types.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { deliveryOptions, loopback, startMxDns } from "../_helpers/outbound_world.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";
import { queuedMx, runningSignals } from "./_batch_fixtures.ts";

const DOMAIN = "dest.test";

/**
 * A lease of `count` messages; `between` runs before each message after the first, `after`
 * once the last was taken (the listing ends when it is done).
 */
function testLease(
  count: number,
  hooks: {
    between?: () => Promise<void> | void;
    after?: () => Promise<void>;
    renew: () => Promise<boolean>;
    release?: () => void;
  },
): Lease & { readonly settled: Settlement[]; readonly calls: string[] } {
  const settled: Settlement[] = [];
  const calls: string[] = [];
  return {
    domains: [DOMAIN],
    settled,
    calls,
    async *messages() {
      for (let n = 1; n <= count; n++) {
        if (n > 1) await hooks.between?.();
        yield queuedMx(n, DOMAIN);
      }
      await hooks.after?.();
    },
    readBody: (id) => [new TextEncoder().encode(`Subject: ${id}\r\n\r\nbody\r\n`)],
    renew: () => {
      calls.push("renew");
      return hooks.renew();
    },
    settle: (results) => {
      settled.push(...results);
      return Promise.resolve();
    },
    release: () => {
      calls.push("release");
      hooks.release?.();
      return Promise.resolve();
    },
  };
}

await toolTest("runBatch keeps its lease as the drain does", ["dnsmasq"], async (t) => {
  if (!canBindPort25("batch_lease", "127.x.y.82")) return;
  await using dns = await startMxDns({ [DOMAIN]: loopback(82) });
  const mx = await startCaptureServer({ host: loopback(82), port: 25 });
  const delivery = deliveryOptions(dns);
  try {
    await t.step("renewals failing past their time: no further message is sent", async () => {
      const leaseSeconds = 300;
      let clock = 1_000_000;
      const lease = testLease(10, {
        // Each message takes half the lease (a slow MX): the next one finds a renewal overdue.
        between: () => void (clock += (leaseSeconds * 1000) / 2),
        renew: () => Promise.reject(new Error("queue not answering")),
      });
      const events: RecordedEvent[] = [];
      const before = mx.messages.length;
      const counts = await runBatch(
        lease,
        { log: recordingLogger(events), delivery, leaseSeconds, now: () => clock },
        runningSignals(),
      );
      assertEquals(mx.messages.length - before, 1, "messages sent after the lease was overdue");
      assertEquals(counts.delivered, 1);
      assertEquals(lease.settled.map((s) => [s.messageId, s.outcome]), [["m1", "delivered"]]);
      assert(events.some((e) => e.event === "lease_renew_failed"), JSON.stringify(events));
      assertEquals(lease.calls.at(-1), "release");
    });

    await t.step("a renewal on its way is waited for before the release", async () => {
      let isRenewing = false;
      let renewedWhileReleased = false;
      let releasedDuringRenewal: boolean | undefined;
      let renewStarted = () => {};
      const started = new Promise<void>((r) => renewStarted = r);
      const lease = testLease(1, {
        // The listing ends only once the timer's renewal is on its way: the batch ends while
        // that renewal is still out.
        after: () => started,
        renew: () => {
          if (releasedDuringRenewal !== undefined) renewedWhileReleased = true;
          isRenewing = true;
          renewStarted();
          return new Promise((resolve) =>
            setTimeout(() => {
              isRenewing = false;
              resolve(true);
            }, 500)
          );
        },
        release: () => void (releasedDuringRenewal = isRenewing),
      });
      const counts = await runBatch(
        lease,
        { log: recordingLogger([]), delivery, leaseSeconds: 3 },
        runningSignals(),
      );
      assertEquals(counts.delivered, 1);
      assertEquals(releasedDuringRenewal, false, "released while a renewal was on its way");
      assertEquals(renewedWhileReleased, false);
      assertEquals(lease.calls.filter((c) => c === "release").length, 1);
    });
  } finally {
    await mx.close();
  }
});
