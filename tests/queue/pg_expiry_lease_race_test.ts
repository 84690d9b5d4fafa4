/**
 * Review wt16-r3: a PostgreSQL maintenance pass reads which domains are leased once, at its
 * start (PgMaintenance #expireOld), then expires each old message in a transaction of its own
 * that does not look at the leases again. An ATRN claim (another node, or this one) that
 * commits in between gets a lease listing the very recipients the pass then expires: the
 * customer receives the message and its sender gets a failure report saying it was not
 * delivered. Here the claim is made inside the pass's leasedDomains read (just after it), the
 * interleaving two nodes can produce.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import type { LeasedDomains } from "../../src/queue/_rows.ts";
import type { Lease, QueuedMessage } from "../../src/queue/types.ts";
import { maintenanceOptions, queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";
import { expiryNodesTest } from "./_pg_expiry_nodes.ts";

const DAY_MS = 86_400_000;

/** `address` is still queued, not expired, and no failure report was queued (`why` if it was). */
async function assertNotExpired(raw: postgres.Sql, address: string, why: string): Promise<void> {
  const [r] = await raw`SELECT status, expired_at FROM recipients WHERE address = ${address}`;
  const reports = await raw`SELECT id FROM messages WHERE mail_from = ''`;
  assert.deepEqual(
    { status: r?.status, expired: r?.expired_at !== null, reports: reports.length },
    { status: "queued", expired: false, reports: 0 },
    why,
  );
}

await expiryNodesTest(
  "PostgreSQL: a maintenance pass does not expire (and bounce) mail that an ATRN claim made during the pass is delivering (review wt16-r3)",
  "expiry_lease_race",
  // The message arrived 40 days ago (queue.max_age is 30 days in maintenanceOptions).
  40 * DAY_MS,
  async ({ old, node, sql, raw, pass }) => {
    let lease: Lease | undefined;
    let listed: QueuedMessage[] = [];
    try {
      await queueMessage(old, { from: "s@sender.test", to: ["u@late.test"] });
      const leasedNow = async (): Promise<LeasedDomains> => {
        const now = Date.now();
        const rows = await sql`SELECT domain FROM domain_leases WHERE lease_until > ${now}`;
        return { atrn: new Set(rows.map((r) => String(r.domain))), mx: new Set(), now };
      };
      await pass(async () => {
        const seen = await leasedNow();
        // The customer's ATRN on another node commits right after the pass read the leases.
        const claimed = await node.claim(["late.test"], { owner: "atrn", leaseSeconds: 60 });
        assert.equal(claimed.kind, "claimed");
        lease = (claimed as Extract<typeof claimed, { kind: "claimed" }>).lease;
        // Its drain lists the message and starts sending it to the customer.
        listed = await Array.fromAsync(lease.messages());
        return seen;
      }).run(maintenanceOptions({ isLocalDomain: (d) => d === "sender.test" }));
      assert.equal(listed.length, 1, "the live lease lists the message (its drain delivers it)");
      await assertNotExpired(
        raw,
        "u@late.test",
        "expired and bounced under a live lease that is delivering it",
      );
    } finally {
      await lease?.release();
    }
  },
);

await expiryNodesTest(
  "PostgreSQL: a maintenance pass does not expire (and bounce) outbound mail that an outbound claim made during the pass is sending (#13)",
  "expiry_outbound_race",
  // Received 6 days ago: past outbound.max_age (5 days in maintenanceOptions).
  6 * DAY_MS,
  async ({ old, node, raw, pass }) => {
    let lease: Lease | undefined;
    let listed: QueuedMessage[] = [];
    try {
      await queueMessage(old, { from: "s@sender.test", to: [rcpt("r@far.test", { route: "mx" })] });
      await pass(async () => {
        const seen: LeasedDomains = { atrn: new Set(), mx: new Set(), now: Date.now() };
        // Another node's outbound worker leases far.test right after the pass read the leases.
        lease = await node.claimOutbound({ owner: "w", leaseSeconds: 60, now: Date.now() });
        assert.ok(lease !== undefined, "the outbound worker leases far.test");
        listed = await Array.fromAsync(lease.messages());
        return seen;
      }).run(maintenanceOptions({ isLocalDomain: (d) => d === "sender.test" }));
      assert.equal(listed.length, 1, "the live lease lists the message (the worker sends it)");
      await assertNotExpired(
        raw,
        "r@far.test",
        "expired and bounced under a live outbound lease that is sending it",
      );
    } finally {
      await lease?.release();
    }
  },
);

/**
 * The other order: the expiry's transaction has run its statements and waits at COMMIT (a
 * deferred trigger waiting on an advisory lock the test holds) when the customer's ATRN claim
 * comes. The claim must wait for it (the expiry holds the domain's lease row as a claim does)
 * and then find nothing queued, not lease the recipient the expiry is bouncing.
 */
const GATE = 4343;

await expiryNodesTest(
  "PostgreSQL: an ATRN claim made while a message's expiry is committing waits for it, and does not deliver what it expired (#13)",
  "expiry_claim_wait",
  40 * DAY_MS,
  async ({ url, old, node, raw }) => {
    const gate = postgres(url, { max: 1, onnotice: () => {} });
    let lease: Lease | undefined;
    try {
      await queueMessage(old, { from: "s@sender.test", to: ["u@late.test"] });
      // The expiry's transaction waits at COMMIT until the gate opens.
      await raw.unsafe(`CREATE FUNCTION test_gate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock_shared(${GATE}); RETURN NULL; END $$`);
      await raw.unsafe(`CREATE CONSTRAINT TRIGGER test_gate AFTER UPDATE ON recipients
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_gate()`);
      await gate`SELECT pg_advisory_lock(${GATE})`;
      const pass = node.maintain(maintenanceOptions({ isLocalDomain: (d) => d === "sender.test" }));
      const waiting = async (n: number, isDone: () => boolean = () => false) => {
        let seen = 0;
        for (let i = 0; i < 500 && seen < n && !isDone(); i++) {
          await new Promise((r) => setTimeout(r, 10));
          const [row] = await raw`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted`;
          seen = Number(row?.n);
        }
        return seen;
      };
      assert.equal(await waiting(1), 1, "the expiry waits at its COMMIT");
      // The customer's ATRN on another node, while the expiry is committing.
      let isClaimDone = false;
      const claiming = node.claim(["late.test"], { owner: "atrn", leaseSeconds: 60 })
        .finally(() => isClaimDone = true);
      await waiting(2, () => isClaimDone);
      // A claim that came back at once drains at once, before the expiry commits.
      const early = isClaimDone ? await claiming : undefined;
      if (early?.kind === "claimed") lease = early.lease;
      let listed = lease === undefined ? [] : await Array.fromAsync(lease.messages());
      await gate`SELECT pg_advisory_unlock(${GATE})`;
      const claimed = await claiming;
      if (early === undefined && claimed.kind === "claimed") {
        lease = claimed.lease;
        listed = await Array.fromAsync(lease.messages());
      }
      const report = await pass;
      const [r] = await raw`SELECT status FROM recipients WHERE address = 'u@late.test'`;
      assert.deepEqual(
        { claim: claimed.kind, listed: listed.length, status: r?.status, dsn: report.dsnQueued },
        { claim: "empty", listed: 0, status: "failed", dsn: 1 },
        "the claim delivers a message the expiry bounced",
      );
    } finally {
      await lease?.release();
      await gate.end({ timeout: 1 });
    }
  },
);
