/**
 * (review wt17-rev1) An outbound batch whose settlements cannot be recorded (the disk is full:
 * SQLITE_FULL on the settle COMMIT) takes no further message, as the ATRN drain does
 * (tests/odmr/drain_settle_failed_test.ts): each message sent after that stays due and goes to
 * the destination's MX a second time once space returns. Before, the batch went on through
 * every due message of the destination. A lease of the test's own over a capture server on
 * 127.x.y.84:25 found through dnsmasq.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { runBatch } from "../../src/outbound/_batch.ts";
import type { Lease } from "../../src/queue/types.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { deliveryOptions, loopback, startMxDns } from "../_helpers/outbound_world.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";
import { queuedMx, runningSignals } from "./_batch_fixtures.ts";

const DOMAIN = "full.test";
const DUE = 20;

await toolTest("runBatch stops taking messages once a settlement failed (wt17-rev1)", [
  "dnsmasq",
], async () => {
  if (!canBindPort25("batch_settle_failed", "127.x.y.84")) return;
  await using dns = await startMxDns({ [DOMAIN]: loopback(84) });
  const mx = await startCaptureServer({ host: loopback(84), port: 25 });
  try {
    let settles = 0;
    const lease: Lease = {
      domains: [DOMAIN],
      async *messages() {
        for (let n = 1; n <= DUE; n++) {
          // A turn of the event loop per message, as a real queue read and socket give.
          await new Promise((r) => setTimeout(r, 0));
          yield queuedMx(n, DOMAIN);
        }
      },
      readBody: (id) => [new TextEncoder().encode(`Subject: ${id}\r\n\r\nbody\r\n`)],
      renew: () => Promise.resolve(true),
      settle: () => {
        settles++;
        return Promise.reject(
          new Error("Cannot commit queue transaction: database or disk is full"),
        );
      },
      release: () => Promise.resolve(),
    };
    const events: RecordedEvent[] = [];
    const before = mx.messages.length;
    await runBatch(lease, {
      log: recordingLogger(events),
      delivery: deliveryOptions(dns),
      leaseSeconds: 300,
    }, runningSignals());
    const sent = mx.messages.length - before;
    assert(settles > 0, "a settlement was tried");
    // The failed one and at most the one behind it, taken while its settlement was recorded.
    assert(sent <= 2, `sent ${sent} of ${DUE} after a failed settlement`);
    assertEquals(events.filter((e) => e.event === "outbound_batch_stopped").length, 1);
  } finally {
    await mx.close();
  }
});
