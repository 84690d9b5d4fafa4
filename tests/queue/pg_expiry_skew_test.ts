/**
 * Node clocks that disagree by seconds must not let one node's maintenance expire (and bounce)
 * outbound mail another node is sending. An outbound lease lists the recipients due by its
 * claim's time, on the claiming node's clock; the pass took a recipient for part of a live
 * lease only when it was due by the pass's own clock. With the claiming node's clock 30 s
 * ahead, a recipient due 10 s from the pass's now was in the lease (being sent) and expired by
 * the pass at once: the world got the message and its sender a failure report saying it was
 * not delivered.
 */
import assert from "node:assert/strict";
import type { Lease } from "../../src/queue/types.ts";
import { maintenanceOptions, queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";
import { expiryNodesTest } from "./_pg_expiry_nodes.ts";

const DAY_MS = 86_400_000;
/** The sending node's clock runs this far ahead of the maintaining node's. */
const AHEAD_MS = 30_000;

await expiryNodesTest(
  "PostgreSQL: a pass on a node whose clock is behind does not expire outbound mail that another node's lease is sending",
  "expiry_clock_skew",
  // Received 6 days ago: past outbound.max_age (5 days in maintenanceOptions).
  6 * DAY_MS,
  async ({ old, node, raw }) => {
    let lease: Lease | undefined;
    try {
      await queueMessage(old, { from: "s@sender.test", to: [rcpt("r@far.test", { route: "mx" })] });
      // Its next attempt is 10 s away by the maintaining node's clock.
      await raw`UPDATE recipients SET next_attempt_at = ${Date.now() + 10_000}`;
      // The other node's worker, its clock 30 s ahead, finds it due and sends it.
      lease = await old.claimOutbound({
        owner: "w",
        leaseSeconds: 300,
        now: Date.now() + AHEAD_MS,
      });
      assert.ok(lease !== undefined, "the worker ahead leases far.test");
      const listed = await Array.fromAsync(lease.messages());
      assert.equal(listed.length, 1, "the lease lists the message (the worker sends it)");
      const report = await node.maintain(
        maintenanceOptions({ isLocalDomain: (d) => d === "sender.test" }),
      );
      const [r] = await raw`SELECT status, expired_at FROM recipients WHERE address = 'r@far.test'`;
      assert.deepEqual(
        { status: r?.status, expired: r?.expired_at !== null, reports: report.dsnQueued },
        { status: "queued", expired: false, reports: 0 },
        "expired and bounced while another node's lease is sending it",
      );
    } finally {
      await lease?.release();
    }
  },
);
