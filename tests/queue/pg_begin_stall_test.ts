/**
 * A transaction whose BEGIN went out on a connection that then went silent: postgres.js hands
 * the transaction to its caller only once BEGIN answered, so the group commit and an ATRN claim
 * had no handle to drop that connection with; it stayed reserved for good. On a pool of one
 * connection (as here) every later message was answered 451 and every ATRN too, for as long
 * as TCP held the connection (forever while the far end's kernel acknowledges). Now the BEGIN's
 * connection is dropped once silent (vendor/postgres `onbegin`, src/queue/pg/_deadline.ts).
 */
import assert from "node:assert/strict";
import {
  bounded,
  claimExampleOrg,
  proxyOf,
  queueTo,
  shortDeadlineTest,
  triedOnce,
  untilAnswered,
} from "../_helpers/pg_short_deadline.ts";

await shortDeadlineTest(
  "a group commit whose BEGIN never answered fails its writes in time, and its silent connection is dropped: the next message commits",
  { db: "stall_group_begin", proxy: true, max: 1, shortCommits: true },
  async (t) => {
    const stalled = proxyOf(t).stallWhenSent("begin");
    const first = await triedOnce(() => queueTo(t, "u1@example.org"));
    assert.equal(await bounded(stalled.then(() => "stalled")), "stalled");
    assert.match(first, /^failed: no COMMIT within 500 ms/);
    // Before: every try failed the same way (the one connection stayed reserved by the BEGIN).
    assert.match(await untilAnswered(() => queueTo(t, "u2@example.org")), /(^| \| )queued$/);
    const left = await t.store.list();
    assert.deepEqual(left.map((m) => m.recipients.map((r) => r.address)), [["u2@example.org"]]);
  },
);

await shortDeadlineTest(
  "an ATRN claim whose BEGIN never answered fails in time, and its silent connection is dropped: the customer's next ATRN gets the domain",
  { db: "stall_claim_begin", proxy: true, max: 1 },
  async (t) => {
    await queueTo(t, "u@example.org");
    const stalled = proxyOf(t).stallWhenSent("begin");
    const first = await triedOnce(() => claimExampleOrg(t, "s1"));
    assert.equal(await bounded(stalled.then(() => "stalled")), "stalled");
    assert.match(first, /^failed: claim: no answer from PostgreSQL within 500 ms/);
    assert.match(await untilAnswered(() => claimExampleOrg(t, "s2")), /(^| \| )claimed$/);
  },
);
