/**
 * (session 18) An outbound batch whose lease release failed (a full disk: the DELETE needs room
 * in the WAL too) must not hold its destination until the lease runs out (`queue.lease_time`,
 * 5 minutes by default): its batch is over, so the next claim deletes that row first and mail
 * due for the domain goes out. The ATRN side got the same in session 17 (UnreleasedLeases).
 * Only that row: another batch of the same worker (the same owner) keeps its own destination.
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { queueMessage, rcpt, withStore } from "../_helpers/queue_fixtures.ts";
import { failingExec } from "../_helpers/failing_exec.ts";

const OWNER = "outbound@mx.test:1";

Deno.test("outbound: a destination whose lease release failed is claimed again at once, the others stay held (session 18)", async () => {
  await withStore(async (store, _dir, db) => {
    for (const to of ["a@far.test", "b@other.test", "c@far.test"]) {
      await queueMessage(store, { from: "s@mx.test", to: [rcpt(to, { route: "mx" })] });
    }
    const now = Date.now() + 1_000;
    const claim = (at: number) => store.claimOutbound({ owner: OWNER, leaseSeconds: 300, now: at });
    const first = await claim(now);
    const second = await claim(now);
    assert(first !== undefined && second !== undefined);
    const far = first.domains[0] === "far.test" ? first : second;
    const other = far === first ? second : first;
    assertEquals(other.domains, ["other.test"]);
    // The release's transaction cannot start (as on a full disk).
    failingExec(db).plan.push("BEGIN IMMEDIATE");
    await rejects(far.release(), /injected/);
    const again = await claim(now + 1_000);
    assertEquals(again?.domains, ["far.test"], "not held by the batch that ended");
    assertEquals(await claim(now + 2_000), undefined, "other.test stays with its batch");
    await again?.release();
    await other.release();
  });
});
