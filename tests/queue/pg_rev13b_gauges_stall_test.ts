/**
 * rev13b repro: the gauges' read (store.domainStats(): every /metrics scrape) runs a
 * transaction on the main pool with no client deadline. When its connection goes silent
 * after BEGIN answered, nothing ever drops it (no other caller's query is pipelined on a
 * reserved connection): on a pool of one every later message fails for good; on the
 * default pool of 8 each such scrape takes one connection away until TCP notices.
 */
import assert from "node:assert/strict";
import {
  bounded,
  proxyOf,
  queueTo,
  shortDeadlineTest,
  untilAnswered,
} from "../_helpers/pg_short_deadline.ts";

await shortDeadlineTest(
  "a /metrics gauges read on a connection gone silent: the next message still commits",
  { db: "rev13b_gauges_stall", proxy: true, max: 1, shortCommits: true },
  async (t) => {
    const stalled = proxyOf(t).stallWhenSent("pg_advisory_xact_lock");
    const scrape = t.store.domainStats().then(() => "stats", (e) => `failed: ${e.message}`);
    assert.equal(await bounded(stalled.then(() => "stalled")), "stalled");
    const tries = await untilAnswered(() => queueTo(t, "u2@example.org"));
    assert.match(tries, /(^| \| )queued$/);
    // The scrape itself failed in time (before: it waited as long as TCP held the connection).
    assert.match(await bounded(scrape), /^failed: gauges: no answer from PostgreSQL within 500 ms/);
  },
);
