/**
 * An ATRN claim and a drain's reads answer within their deadline when an established
 * connection goes silent (#14): the server accepted it and never answers again, which TCP
 * keepalive does not see while the far end's kernel acknowledges. Before, the claim and the
 * reads waited indefinitely: the customer's ATRN got no reply, a drain hung mid-message. A
 * claim cut short leaves no lock and no lease behind; a drain cut short loses no message.
 * The proxy (tests/_helpers/postgres_proxy.ts) stalls one connection at a chosen statement
 * (the client's message, or the server's answer: then the statement ran and holds its locks).
 */
import assert from "node:assert/strict";
import type { PgQueueStore } from "../../src/queue/pg/store.ts";
import type { ClaimResult } from "../../src/queue/types.ts";
import { bounded, proxyOf, shortDeadlineTest } from "../_helpers/pg_short_deadline.ts";
import type { PostgresProxy } from "../_helpers/postgres_proxy.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";

/** `p`'s outcome as text, or "no answer in N ms" once a step's bound passed. */
const within = bounded;

const outcome = (p: Promise<ClaimResult>) => within(p.then((r) => r.kind, (err) => String(err)));

/**
 * A test on a fresh database reached through a proxy (calls and commits with a 500 ms
 * deadline), with one message queued for example.org.
 */
function stalledTest(
  name: string,
  db: string,
  fn: (store: PgQueueStore, proxy: PostgresProxy) => Promise<void>,
): Promise<void> {
  return shortDeadlineTest(name, { db, proxy: true, shortCommits: true }, async (t) => {
    await queueMessage(t.store, { from: "s@example.net", to: ["u@example.org"] });
    await fn(t.store, proxyOf(t));
  });
}

/** Claims example.org for `owner`, again while it is refused (a customer retrying ATRN). */
async function claimAgain(store: PgQueueStore, owner: string): Promise<string> {
  const tries: string[] = [];
  for (let i = 0; i < 8; i++) {
    const got = await outcome(store.claim(["example.org"], { owner, leaseSeconds: 600 }));
    tries.push(got);
    if (got === "claimed") return tries.join(" | ");
    await new Promise((r) => setTimeout(r, 200));
  }
  return tries.join(" | ");
}

await stalledTest(
  "an ATRN claim stalled after its upsert fails within its deadline, and leaves the domain free (#14)",
  "stall_claim",
  async (store, proxy) => {
    // The server's CommandComplete for the upsert: it ran, the row is locked, no answer comes.
    const stalled = proxy.stallWhenAnswered("INSERT 0 1");
    const started = performance.now();
    const first = await outcome(store.claim(["example.org"], { owner: "s1", leaseSeconds: 600 }));
    const tookMs = performance.now() - started;
    assert.equal(await within(stalled.then(() => "stalled")), "stalled");
    assert.match(first, /no answer from PostgreSQL within 500 ms/);
    assert.ok(tookMs < 2_000, `claim answered after ${Math.round(tookMs)} ms`);
    // The stalled transaction holds the domain's row until the server ends it (its idle bound):
    // the customer's next ATRN gets the domain, within a few tries.
    assert.match(await claimAgain(store, "s2"), /claimed$/);
  },
);

await stalledTest(
  "an ATRN claim whose COMMIT went out but whose answer never came leaves no lease behind (#14)",
  "stall_commit",
  async (store, proxy) => {
    // The server's CommandComplete for the claim's COMMIT (nothing else commits meanwhile).
    const stalled = proxy.stallWhenAnswered("COMMIT");
    const first = await outcome(store.claim(["example.org"], { owner: "s1", leaseSeconds: 600 }));
    assert.equal(await within(stalled.then(() => "stalled")), "stalled");
    assert.match(first, /no answer from PostgreSQL within 500 ms/);
    // The server committed the lease; the claim was answered 451: its lease is taken back, so
    // the domain is not held for the lease's 600 s.
    assert.match(await claimAgain(store, "s2"), /claimed$/);
  },
);

for (
  const [what, statement] of [
    ["listing the domain's messages", "SELECT DISTINCT message_id FROM recipients"],
    ["reading a body", "FROM message_chunks"],
  ] as const
) {
  await stalledTest(
    `a drain stalled while ${what} fails within the deadline; the message stays queued (#14)`,
    `stall_${statement.includes("chunks") ? "body" : "list"}`,
    async (store, proxy) => {
      const claim = await store.claim(["example.org"], { owner: "s1", leaseSeconds: 600 });
      assert.equal(claim.kind, "claimed");
      const lease = (claim as Extract<ClaimResult, { kind: "claimed" }>).lease;
      const stalled = proxy.stallWhenSent(statement);
      const drained = async () => {
        for await (const m of lease.messages()) {
          for await (const _ of lease.readBody(m.id)) { /* read to the end */ }
        }
        return "drained";
      };
      const started = performance.now();
      const got = await within(drained().catch((err) => String(err)));
      const tookMs = performance.now() - started;
      assert.equal(await within(stalled.then(() => "stalled")), "stalled");
      assert.match(got, /no answer from PostgreSQL within 500 ms/);
      assert.ok(tookMs < 2_000, `read failed after ${Math.round(tookMs)} ms`);
      assert.equal(await within(lease.release().then(() => "released", String)), "released");
      const left = await store.list();
      assert.deepEqual(left.map((m) => m.recipients.map((r) => r.status)), [["queued"]]);
      assert.match(await claimAgain(store, "s2"), /claimed$/);
    },
  );
}

await stalledTest(
  "a pool whose established connections all went silent recovers: the late calls' connections are dropped, new ones answer (#14)",
  "stall_all",
  async (store, proxy) => {
    // A pool with several connections, all of them then silent at once.
    await Promise.all([...Array(8).keys()].map(() => store.list()));
    assert.ok(proxy.stallAll() >= 2, "the pool had opened several connections");
    const rounds: string[] = [];
    for (let round = 0; round < 8; round++) {
      const claim = await outcome(
        store.claim(["example.org"], { owner: `r${round}`, leaseSeconds: 600 }),
      );
      if (claim === "claimed") {
        // The next round's claim must find the domain free again.
        const lease = await store.claim(["example.org"], { owner: `r${round}`, leaseSeconds: 600 });
        if (lease.kind === "claimed") await lease.lease.release();
      }
      const write = await within(
        queueMessage(store, { from: "s@example.net", to: ["v@example.org"] }).then(
          () => "queued",
          String,
        ),
      );
      rounds.push(`${claim}/${write}`);
      if (claim === "claimed" && write === "queued") break;
    }
    // Before, every round failed at its deadline for as long as TCP kept the silent
    // connections (forever on loopback): the pool never opened a fresh one. A failed round
    // drops two of its 8 (the claim's and the write's; a claim none of whose upserts answered
    // has nothing to undo, so no third call), so at most 4 rounds fail.
    assert.match(rounds.at(-1) ?? "", /^claimed\/queued$/, rounds.join(" | "));
    assert.ok(
      rounds.length <= 5,
      `recovered only after ${rounds.length} rounds: ${rounds.join(" | ")}`,
    );
  },
);

await stalledTest(
  "a lease release stalled past its deadline is tried again on another connection: the next ATRN gets the domain (#14)",
  "stall_release",
  async (store, proxy) => {
    const claim = await store.claim(["example.org"], { owner: "conn1", leaseSeconds: 600 });
    assert.equal(claim.kind, "claimed");
    const stalled = proxy.stallWhenSent("DELETE FROM");
    const lease = (claim as Extract<ClaimResult, { kind: "claimed" }>).lease;
    assert.equal(await within(lease.release().then(() => "released", String)), "released");
    assert.equal(await within(stalled.then(() => "stalled")), "stalled");
    // Another session (another owner): before, busy until the lease's 600 s ran out.
    assert.equal(
      await outcome(store.claim(["example.org"], { owner: "conn2", leaseSeconds: 600 })),
      "claimed",
    );
  },
);
