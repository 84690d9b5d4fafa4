/**
 * The main pool's calls that had no client deadline answer within it when their connection
 * goes silent (the server accepted it and never answers again, which TCP keepalive does not
 * see while the far end's kernel acknowledges): the outbound worker's `nextOutboundAt` between
 * claims (it stopped sending mail), `outboundLeased` under `queue list`, serve's start-up
 * `releaseAllLeases` (serve never started), and the quota `usage` a sender's RCPT and DATA
 * wait on (no reply until the sender gave up; now 451). Each fails like any late call (_deadline.ts), and
 * the silent connection is dropped: the store's only connection here, so the next call
 * answering shows that the pool recovered.
 */
import assert from "node:assert/strict";
import {
  bounded,
  proxyOf,
  type ShortDeadline,
  shortDeadlineTest,
  triedOnce,
  untilAnswered,
} from "../_helpers/pg_short_deadline.ts";
import { queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";

/** Queues a message for an mx-route recipient at dest.example. */
const queueOutbound = (t: ShortDeadline) =>
  queueMessage(t.store, { from: "s@example.net", to: [rcpt("v@dest.example", { route: "mx" })] });

/** Stalls the connection that sends `statement`, then runs `call`: its outcome, bounded. */
async function stalledAt(
  t: ShortDeadline,
  statement: string,
  call: () => Promise<string>,
): Promise<string> {
  const stalled = proxyOf(t).stallWhenSent(statement);
  const got = await triedOnce(call);
  assert.equal(await bounded(stalled.then(() => "stalled")), "stalled");
  return got;
}

await shortDeadlineTest(
  "the outbound worker's next-attempt read on a silent connection fails within its deadline; the pool answers again",
  { db: "stall_next_outbound", proxy: true, max: 1 },
  async (t) => {
    await queueOutbound(t);
    const next = () =>
      t.store.nextOutboundAt().then((at) => `next ${at === undefined ? "none" : "due"}`);
    const got = await stalledAt(t, "SELECT min(next_attempt_at)", next);
    // Before: no answer ever (the worker waited on it, and sent no more mail).
    assert.match(got, /^failed: next outbound attempt: no answer from PostgreSQL within 500 ms/);
    assert.match(await untilAnswered(next), /(^| \| )next due$/);
  },
);

await shortDeadlineTest(
  "reading the outbound leases (queue list) on a silent connection fails within its deadline; the pool answers again",
  { db: "stall_outbound_leased", proxy: true, max: 1 },
  async (t) => {
    await queueOutbound(t);
    const list = () => t.store.list().then((ms) => `listed ${ms.length}`);
    // Live on the database's clock (src/queue/pg/_clock.ts).
    const got = await stalledAt(t, "FROM outbound_leases WHERE lease_until > (extract", list);
    assert.match(got, /^failed: outbound leases: no answer from PostgreSQL within 500 ms/);
    assert.match(await untilAnswered(list), /(^| \| )listed 1$/);
  },
);

for (const table of ["domain_leases", "outbound_leases"]) {
  await shortDeadlineTest(
    `serve's start-up release of its leases (${table}) on a silent connection fails within its deadline; run again, it releases them`,
    { db: `stall_release_all_${table}`, proxy: true, max: 1 },
    async (t) => {
      await queueMessage(t.store, { from: "s@example.net", to: ["u@example.org"] });
      await queueOutbound(t);
      // A previous process of this node left an ATRN and an outbound lease.
      const atrn = await t.store.claim(["example.org"], { owner: "s1", leaseSeconds: 600 });
      assert.equal(atrn.kind, "claimed");
      const mx = await t.store.claimOutbound({ owner: "w", leaseSeconds: 600, now: Date.now() });
      assert.deepEqual(mx?.domains, ["dest.example"]);
      const release = () => t.store.releaseAllLeases().then((n) => `released ${n}`);
      const got = await stalledAt(t, `DELETE FROM ${table} WHERE starts_with`, release);
      assert.match(got, /^failed: release of this node's (outbound )?leases: no answer/);
      // Whatever the stalled DELETE did (the server may have run it), a second run leaves
      // no lease of this node behind: both domains can be claimed again.
      assert.match(await untilAnswered(release), /(^| \| )released [12]$/);
      const again = await t.store.claim(["example.org"], { owner: "s2", leaseSeconds: 600 });
      assert.equal(again.kind, "claimed");
      const mxAgain = await t.store.claimOutbound({
        owner: "w2",
        leaseSeconds: 600,
        now: Date.now(),
      });
      assert.deepEqual(mxAgain?.domains, ["dest.example"]);
    },
  );
}

await shortDeadlineTest(
  "a domain's quota usage read on a silent connection fails within its deadline; the pool answers again",
  { db: "stall_usage", proxy: true, max: 1 },
  async (t) => {
    await queueMessage(t.store, { from: "s@example.net", to: ["u@example.org"] });
    const usage = () => t.store.usage("example.org").then((u) => `messages ${u.messages}`);
    const got = await stalledAt(t, "coalesce(sum(size), 0)", usage);
    assert.match(got, /^failed: quota usage: no answer from PostgreSQL within 500 ms/);
    assert.match(await untilAnswered(usage), /(^| \| )messages 1$/);
  },
);
