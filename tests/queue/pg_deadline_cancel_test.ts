/**
 * A PostgreSQL call past its deadline (src/queue/pg/_deadline.ts) and the other callers on its
 * connection. postgres.js pipelines queries on a busy connection: dropping that connection at
 * the deadline failed every query queued behind the late one, though the server may still run
 * them. An outbound claim behind it then committed its lease while the worker was told it
 * failed: the destination stayed leased by nobody for the lease's time (mail stalled). Now the
 * server ends a statement that would miss its deadline (`statement_timeout` of the store's
 * pool of deadline-bound calls; no client-side CancelRequest, pg_deadline_pipeline_test.ts),
 * the connection is dropped only when it stays silent, and an outbound claim whose outcome is
 * unknown is taken back.
 * A statement is made slow by a row lock another session holds; a connection silent by the
 * proxy (tests/_helpers/postgres_proxy.ts).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import type { PgQueueStore } from "../../src/queue/pg/store.ts";
import type { ClaimResult, Lease } from "../../src/queue/types.ts";
import { bounded, proxyOf, shortDeadlineTest } from "../_helpers/pg_short_deadline.ts";
import { queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";

const within = bounded;
const W = { owner: "w", leaseSeconds: 600 };

const claimed = (p: Promise<Lease | undefined>) =>
  within(p.then((l) => `claimed ${l?.domains.join(",") ?? "nothing"}`, (e) => `error: ${e}`));

/** Claims again (a worker's later rounds, bounded) until one gets a destination; the last. */
async function claimAgain(store: PgQueueStore): Promise<string> {
  const tries: string[] = [];
  for (let i = 0; i < 8; i++) {
    const got = await claimed(store.claimOutbound({ ...W, now: Date.now() }));
    tries.push(got);
    if (got.startsWith("claimed dest")) return got;
    await new Promise((r) => setTimeout(r, 200));
  }
  return tries.join(" | ");
}

/** The outbound_leases rows, as `domain owner`. */
async function outboundLeases(url: string): Promise<string[]> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`SELECT domain, owner FROM outbound_leases ORDER BY domain`;
    return rows.map((r) => `${r.domain} ${r.owner}`);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

// One connection: every query of the store goes out on it, pipelined.
await shortDeadlineTest(
  "a call that would pass its deadline is ended by the server, its connection kept: an outbound claim pipelined behind it is never told it failed while its lease stays held",
  { db: "deadline_pipelined", max: 1 },
  async ({ store, url }) => {
    const locker = postgres(url, { max: 1, onnotice: () => {} });
    let unlock = () => {};
    let held: Promise<unknown> = Promise.resolve();
    try {
      await queueMessage(store, { from: "s@example.net", to: ["u@example.org"] });
      await queueMessage(store, {
        from: "s@example.net",
        to: [rcpt("v@dest.example", { route: "mx" })],
      });
      const atrn = await store.claim(["example.org"], { owner: "s1", leaseSeconds: 600 });
      assert.equal(atrn.kind, "claimed");
      const lease = (atrn as Extract<ClaimResult, { kind: "claimed" }>).lease;
      // postgres.js pipelines a statement once it is prepared on the connection (the first
      // run describes it alone): each one is run once before, as a running node has.
      assert.equal(await lease.renew(), true);
      const warm = await store.claimOutbound({ ...W, now: Date.now() });
      assert.deepEqual(warm?.domains, ["dest.example"]);
      await warm?.release();
      // Another session holds the ATRN lease's row: the renewal waits for it.
      const locked = Promise.withResolvers<void>();
      const release = new Promise<void>((r) => unlock = r);
      held = locker.begin(async (tx) => {
        await tx`SELECT 1 FROM domain_leases WHERE domain = 'example.org' FOR UPDATE`;
        locked.resolve();
        await release;
      }).catch(() => {});
      await locked.promise;
      // The claim's SELECT goes first; its INSERT is sent once that answers: behind the
      // renewal, which waits for the lock past its deadline.
      const outbound = claimed(store.claimOutbound({ ...W, now: Date.now() }));
      const renewal = within(lease.renew().then((ok) => `renewed ${ok}`, (e) => String(e)));
      // The server ends it (statement_timeout, 450 ms), or the deadline comes first.
      assert.match(
        await renewal,
        /canceling statement due to statement timeout|lease renewal: no answer from PostgreSQL within 500 ms/,
      );
      const got = await outbound;
      unlock();
      await held;
      // The claim shared the renewal's wait, so it may be late too. Either way what the
      // worker was told must hold: a lease it got is in the table; a claim it was told failed
      // left no lease behind (before: told CONNECTION_CLOSED while its lease was committed,
      // and the destination stayed leased by nobody for the lease's 600 s).
      if (got === "claimed dest.example") {
        assert.deepEqual(await outboundLeases(url), ["dest.example n1|w"]);
      } else {
        assert.match(got, /^error: /);
        assert.equal(await claimAgain(store), "claimed dest.example", got);
      }
      // The ATRN lease is still this session's: the connection went on.
      assert.equal(
        await within(lease.renew().then((ok) => `renewed ${ok}`, String)),
        "renewed true",
      );
    } finally {
      unlock();
      await held;
      await locker.end({ timeout: 1 });
    }
  },
);

await shortDeadlineTest(
  "an outbound claim whose INSERT committed but whose answer never came is taken back: the next claim gets the destination",
  { db: "deadline_outbound_answer", proxy: true, shortCommits: true },
  async (t) => {
    const { store } = t;
    await queueMessage(store, {
      from: "s@example.net",
      to: [rcpt("v@dest.example", { route: "mx" })],
    });
    // The server's CommandComplete for the lease's upsert: it ran and committed (autocommit),
    // and the answer never reaches the client.
    const stalled = proxyOf(t).stallWhenAnswered("INSERT 0 1");
    const first = await claimed(store.claimOutbound({ ...W, now: Date.now() }));
    assert.equal(await within(stalled.then(() => "stalled")), "stalled");
    assert.match(first, /outbound claim: no answer from PostgreSQL within 500 ms/);
    // Before: the worker waited for that answer forever; the lease, committed, held the
    // destination for its 600 s. Now this node takes it back: its next claim gets it.
    assert.equal(await claimAgain(store), "claimed dest.example");
  },
);

await shortDeadlineTest(
  "a lease release whose connection is lost (as a connection dropped past another call's deadline) is tried again on another: the next ATRN gets the domain",
  { db: "deadline_release_lost", proxy: true },
  async (t) => {
    const { store } = t;
    await queueMessage(store, { from: "s@example.net", to: ["u@example.org"] });
    const claim = await store.claim(["example.org"], { owner: "s1", leaseSeconds: 600 });
    assert.equal(claim.kind, "claimed");
    const lease = (claim as Extract<ClaimResult, { kind: "claimed" }>).lease;
    // The release's connection is reset as its DELETE goes out: a retryable error.
    const cut = proxyOf(t).cutWhenSent(`DELETE FROM "domain_leases"`, "reset");
    const released = await within(lease.release().then(() => "released", String));
    assert.equal(await within(cut.then(() => "cut")), "cut");
    // Before: the error went to the session and the lease stayed for its 600 s.
    assert.equal(released, "released");
    const next = await store.claim(["example.org"], { owner: "s2", leaseSeconds: 600 });
    assert.equal(next.kind, "claimed");
  },
);
