/**
 * rev13b repro: a transaction whose deadline passed while its BEGIN still waited for a
 * connection (the pool's only one reserved by another transaction) has no BEGIN connection
 * to watch at the deadline (`begun` undefined: dropWhenSilent is a no-op). Its BEGIN goes out
 * later, when that connection is free; if the connection then goes silent nothing ever drops
 * it: nobody else's query is pipelined on a reserved connection, and the group's / claim's
 * deadline handler already ran. On a pool of one every later message and ATRN fails for good.
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

/** Holds the pool's only connection in a transaction for `ms` (healthy, answering). */
async function holdPool(
  t: { store: { pool: import("../../src/queue/pg/connect.ts").Sql } },
  ms: number,
) {
  let began!: () => void;
  const isBegun = new Promise<void>((r) => began = r);
  const done = t.store.pool.begin(async (tx) => {
    await tx`SELECT 1`;
    began();
    await new Promise((r) => setTimeout(r, ms));
  });
  await isBegun;
  return { done };
}

await shortDeadlineTest(
  "an ATRN claim past its deadline before its BEGIN was sent, whose BEGIN then stalls: the pool recovers",
  { db: "rev13b_late_claim_begin", proxy: true, max: 1 },
  async (t) => {
    await queueTo(t, "u@example.org");
    const held = await holdPool(t, 900);
    const stalled = proxyOf(t).stallWhenSent("begin");
    const first = await triedOnce(() => claimExampleOrg(t, "s1"));
    assert.match(first, /^failed: claim: no answer from PostgreSQL within 500 ms/);
    await held.done;
    assert.equal(await bounded(stalled.then(() => "stalled")), "stalled");
    const tries = await untilAnswered(() => claimExampleOrg(t, "s2"));
    assert.match(tries, /(^| \| )claimed$/);
  },
);

await shortDeadlineTest(
  "a group commit past its deadline before its BEGIN was sent, whose BEGIN then stalls: the next message commits",
  { db: "rev13b_late_group_begin", proxy: true, max: 1, shortCommits: true },
  async (t) => {
    const held = await holdPool(t, 900);
    const stalled = proxyOf(t).stallWhenSent("begin");
    const first = await triedOnce(() => queueTo(t, "u1@example.org"));
    assert.match(first, /^failed: no COMMIT within 500 ms/);
    await held.done;
    assert.equal(await bounded(stalled.then(() => "stalled")), "stalled");
    const tries = await untilAnswered(() => queueTo(t, "u2@example.org"));
    assert.match(tries, /(^| \| )queued$/);
  },
);
