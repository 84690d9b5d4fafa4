/**
 * A lease whose release failed because PostgreSQL was down (a restart while a drain ended) is
 * released once the database is back, not left to run out. Before, the lease's two release
 * attempts failed within the outage and its domain stayed busy for the rest of `lease_time`
 * (5 minutes by default): every node answered the customer's ATRN `451` long after the
 * database had come back, and the outbound worker left the destination alone as long.
 */
import assert from "node:assert/strict";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import type { ClaimResult, Lease } from "../../src/queue/types.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";

/** `claim` again every 250 ms for up to 20 s until it gives a lease; the last outcome. */
async function claimedWithin(claim: () => Promise<ClaimResult | Lease | undefined>) {
  let last = "";
  for (let i = 0; i < 80; i++) {
    const got = await claim().catch((e: Error) => `failed: ${e.message}`);
    if (typeof got === "object" && got !== null && "kind" in got) {
      if (got.kind === "claimed") {
        await got.lease.release();
        return "claimed";
      }
      last = got.kind;
    } else if (typeof got === "object" && got !== null) {
      await got.release();
      return "claimed";
    } else last = got ?? "nothing due";
    await new Promise((r) => setTimeout(r, 250));
  }
  return last;
}

await postgresTest(
  "a lease whose release failed while PostgreSQL was down is released once it is back",
  async (pg) => {
    const url = await pg.createDatabase("release_later");
    const a = await PgQueueStore.open({ url }, { nodeId: "node-a" });
    const b = await PgQueueStore.open({ url }, { nodeId: "node-b" });
    try {
      await queueMessage(a, { from: "s@sender.test", to: ["u@late.test"] });
      await queueMessage(a, { from: "s@sender.test", to: [rcpt("r@far.test", { route: "mx" })] });
      const atrn = await a.claim(["late.test"], { owner: "node-a|s1", leaseSeconds: 300 });
      assert.equal(atrn.kind, "claimed");
      const outbound = await a.claimOutbound({
        owner: "node-a|w1",
        leaseSeconds: 300,
        now: Date.now(),
      });
      assert.ok(outbound !== undefined);
      await pg.kill("fast");
      const released = await Promise.all(
        [(atrn as Extract<ClaimResult, { kind: "claimed" }>).lease, outbound].map((l) =>
          l.release().then(() => "released", () => "failed")
        ),
      );
      assert.deepEqual(released, ["failed", "failed"], "no release while the database is down");
      await pg.start();
      // Node B: the customer's next ATRN, and its outbound worker.
      assert.equal(
        await claimedWithin(() => b.claim(["late.test"], { owner: "node-b|s1", leaseSeconds: 60 })),
        "claimed",
        "ATRN for the domain after the database came back",
      );
      assert.equal(
        await claimedWithin(() =>
          b.claimOutbound({ owner: "node-b|w1", leaseSeconds: 60, now: Date.now() })
        ),
        "claimed",
        "the outbound destination after the database came back",
      );
    } finally {
      await a.close();
      await b.close();
    }
  },
);
