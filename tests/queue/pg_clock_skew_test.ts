/**
 * Review wt16-r3: on PostgreSQL the lease times are written and compared with each node's own
 * clock (PgQueueStore's `now`, Date.now), not the database's. Two nodes whose clocks differ by
 * more than what is left of a lease both hold the same domain: the second claim sees the
 * first's live lease as expired and takes it over, so both drain the same mail (a duplicate;
 * the first only learns at its next renewal). A live lease must stay busy whatever the clock of
 * the node that asks.
 */
import assert from "node:assert/strict";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";

const LEASE_SECONDS = 30;
/** Node B's clock runs ahead of node A's by a little more than one lease. */
const SKEW_MS = (LEASE_SECONDS + 1) * 1000;

await postgresTest(
  "PostgreSQL: a node whose clock runs ahead does not take another node's live ATRN lease (review wt16-r3)",
  async (pg) => {
    const url = await pg.createDatabase("clock_skew_atrn");
    const a = await PgQueueStore.open({ url }, { nodeId: "node-a" });
    const b = await PgQueueStore.open({ url }, {
      nodeId: "node-b",
      now: () => Date.now() + SKEW_MS,
    });
    try {
      await queueMessage(a, { to: ["u@skew.test"] });
      const first = await a.claim(["skew.test"], { owner: "s1", leaseSeconds: LEASE_SECONDS });
      assert.equal(first.kind, "claimed");
      const lease = (first as Extract<typeof first, { kind: "claimed" }>).lease;
      // Node A's lease is live (just taken, and renewed); node B asks for the same domain.
      assert.equal(await lease.renew(), true);
      const second = await b.claim(["skew.test"], { owner: "s2", leaseSeconds: LEASE_SECONDS });
      try {
        assert.equal(second.kind, "busy", "node B took node A's live lease: both drain skew.test");
      } finally {
        if (second.kind === "claimed") await second.lease.release();
        await lease.release();
      }
    } finally {
      await b.close();
      await a.close();
    }
  },
);

await postgresTest(
  "PostgreSQL: a node whose clock runs ahead does not take another node's live outbound lease (review wt16-r3)",
  async (pg) => {
    const url = await pg.createDatabase("clock_skew_mx");
    const a = await PgQueueStore.open({ url }, { nodeId: "node-a" });
    const bNow = () => Date.now() + SKEW_MS;
    const b = await PgQueueStore.open({ url }, { nodeId: "node-b", now: bNow });
    try {
      await queueMessage(a, { from: "s@ours.test", to: [rcpt("r@far.test", { route: "mx" })] });
      const lease = await a.claimOutbound({
        owner: "w1",
        leaseSeconds: LEASE_SECONDS,
        now: Date.now(),
      });
      assert.ok(lease !== undefined, "node A leases far.test");
      assert.equal(await lease.renew(), true);
      const second = await b.claimOutbound({
        owner: "w2",
        leaseSeconds: LEASE_SECONDS,
        now: bNow(),
      });
      try {
        assert.equal(
          second,
          undefined,
          "node B took node A's live outbound lease: far.test sent twice",
        );
      } finally {
        await second?.release();
        await lease.release();
      }
    } finally {
      await b.close();
      await a.close();
    }
  },
);
