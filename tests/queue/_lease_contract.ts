/**
 * The leases' part of the QueueStore contract, run by tests/queue/contract_test.ts against both
 * backends: claims (empty, busy, taken over after expiry), what a lease lists, settlements, and
 * the release of what a previous process left.
 */
import assert from "node:assert/strict";
import { collectBytes } from "../_helpers/bytes.ts";
import { delivered, failEveryOther } from "../_helpers/queue_fixtures.ts";
import { A, B, leaseOf, type Opener, put } from "./_store_contract.ts";

/** The leases' cases. */
export async function leaseContract(t: Deno.TestContext, open: Opener): Promise<void> {
  await t.step(
    "claim: empty, all-or-nothing busy, taken over after expiry (N vs N+1 ms)",
    async () => {
      await open(async (store, clock) => {
        await put(store, clock, ["a@one.test"]);
        await put(store, clock, ["b@two.test"]);
        assert.deepEqual(await store.claim(["none.test"], A), { kind: "empty" });
        const a = leaseOf(await store.claim(["two.test"], A));
        assert.deepEqual(await store.claim(["one.test", "two.test"], B), {
          kind: "busy",
          domain: "two.test",
        });
        // one.test was not leased by the refused claim.
        await leaseOf(await store.claim(["one.test"], A)).release();
        clock.ms += 59_999;
        assert.equal((await store.claim(["two.test"], B)).kind, "busy", "1 ms before expiry");
        clock.ms += 1;
        const b = leaseOf(await store.claim(["two.test"], B));
        assert.equal(await a.renew(), false, "A lost its lease to B");
        assert.equal(await b.renew(), true);
        await b.release();
        await a.release(); // releasing a lost lease does not drop B's successor
        assert.equal((await store.claim(["two.test"], A)).kind, "claimed");
      });
    },
  );

  await t.step(
    "a lease lists only queued recipients of its domains, oldest first, paged",
    async () => {
      await open(async (store, clock) => {
        const want: string[] = [];
        for (let i = 0; i < 230; i++) {
          const id = await put(store, clock, [`u${i}@one.test`, `x${i}@other.test`]);
          if (i % 2 === 0) want.push(id);
          else await put(store, clock, [`y${i}@other.test`]);
        }
        // Every other one.test message: its recipient failed, so only the even ones are offered.
        const first = leaseOf(await store.claim(["one.test"], A));
        await failEveryOther(first, 1);
        await first.release();
        const lease = leaseOf(await store.claim(["one.test"], A));
        const got = await Array.fromAsync(lease.messages());
        assert.equal(got.length, 115);
        assert.ok(got.every((m) => m.recipients.every((r) => r.domain === "one.test")));
        assert.ok(got.every((m) => m.recipients.every((r) => r.status === "delivering")));
        assert.deepEqual(got.map((m) => m.id), [...got.map((m) => m.id)].sort());
        await lease.release();
      });
    },
  );

  await t.step(
    "settle: delivered leaves, deferred stays queued, failed is not offered again",
    async () => {
      await open(async (store, clock) => {
        const id = await put(store, clock, ["a@one.test", "b@one.test", "c@one.test"]);
        const lease = leaseOf(await store.claim(["one.test"], A));
        const [m] = await Array.fromAsync(lease.messages());
        const [ra, rb, rc] = m?.recipients ?? [];
        assert.ok(ra && rb && rc);
        await Promise.all([
          lease.settle([delivered(id, ra.id)]),
          lease.settle([{
            recipientId: rb.id,
            messageId: id,
            outcome: "deferred",
            reply: "451 later",
          }]),
          lease.settle([{ recipientId: rc.id, messageId: id, outcome: "failed", reply: "550 no" }]),
        ]);
        // Idempotent: settling a delivered recipient again changes nothing.
        await lease.settle([delivered(id, ra.id)]);
        await lease.release();
        assert.deepEqual(
          (await store.get(id))?.recipients.map((r) => [r.address, r.status, r.lastReply]),
          [["b@one.test", "queued", "451 later"], ["c@one.test", "failed", "550 no"]],
        );
        const next = leaseOf(await store.claim(["one.test"], B));
        const again = await Array.fromAsync(next.messages());
        assert.deepEqual(again[0]?.recipients.map((r) => r.address), ["b@one.test"]);
        await next.settle([{
          recipientId: again[0]?.recipients[0]?.id ?? 0,
          messageId: id,
          outcome: "delivered",
          reply: "250",
        }]);
        await next.release();
        // Only the failed one is left; when it goes too, the message and its body go.
        assert.equal((await store.claim(["one.test"], A)).kind, "empty");
        assert.equal(await store.deleteDomain("one.test"), 1);
        assert.equal(await store.get(id), undefined);
        // A gone message has no body to read: an error, never an empty body sent (#13).
        await assert.rejects(collectBytes(store.readBody(id)), /no such message/);
      });
    },
  );

  await t.step(
    "one settle call over many messages: only those left without a recipient go, counters follow (#13)",
    async () => {
      await open(async (store, clock) => {
        const size = new TextEncoder().encode("Subject: t\r\n\r\nbody\r\n").length;
        const both = await put(store, clock, ["a@one.test", "b@one.test"]);
        const deferred = await put(store, clock, ["c@one.test", "d@one.test"]);
        const failed = await put(store, clock, ["e@one.test", "f@one.test"]);
        const other = await put(store, clock, ["g@one.test", "h@two.test"]);
        const lone = await put(store, clock, ["i@one.test"]);
        const lease = leaseOf(await store.claim(["one.test"], A));
        const got = await Array.fromAsync(lease.messages());
        const named = (address: string) => {
          const m = got.find((g) => g.recipients.some((r) => r.address === address));
          const recipientId = m?.recipients.find((r) => r.address === address)?.id ?? 0;
          return { recipientId, messageId: m?.id ?? "" };
        };
        const ok = "250 ok";
        await lease.settle([
          { ...named("a@one.test"), outcome: "delivered", reply: ok },
          { ...named("c@one.test"), outcome: "delivered", reply: ok },
          { ...named("d@one.test"), outcome: "deferred", reply: "451 later" },
          { ...named("e@one.test"), outcome: "failed", reply: "550 no" },
          { ...named("f@one.test"), outcome: "delivered", reply: ok },
          { ...named("g@one.test"), outcome: "delivered", reply: ok },
          { ...named("b@one.test"), outcome: "delivered", reply: ok },
          { ...named("i@one.test"), outcome: "delivered", reply: ok },
        ]);
        await lease.release();
        const left = async (m: string) =>
          (await store.get(m))?.recipients.map((r) => `${r.address}:${r.status}`);
        assert.equal(await left(both), undefined);
        assert.equal(await left(lone), undefined);
        await assert.rejects(collectBytes(store.readBody(both)), /no such message/);
        assert.deepEqual(await left(deferred), ["d@one.test:queued"]);
        assert.deepEqual(await left(failed), ["e@one.test:failed"]);
        assert.deepEqual(await left(other), ["h@two.test:queued"]);
        assert.equal((await collectBytes(store.readBody(other))).length, size);
        // Quota: the messages still holding a one.test recipient; gauges: those still waiting.
        assert.deepEqual(await store.usage("one.test"), { messages: 2, bytes: 2 * size });
        assert.deepEqual(
          (await store.domainStats()).map((s) => [s.domain, s.messages, s.bytes]),
          [["one.test", 1, size], ["two.test", 1, size]],
        );
      });
    },
  );

  await t.step("releaseAllLeases frees what a previous process left; ping answers", async () => {
    await open(async (store, clock) => {
      await put(store, clock, ["a@one.test"]);
      leaseOf(await store.claim(["one.test"], A)); // never released: a crash
      assert.equal((await store.claim(["one.test"], B)).kind, "busy");
      assert.equal(await store.releaseAllLeases(), 1);
      assert.equal((await store.claim(["one.test"], B)).kind, "claimed");
      await store.ping();
    });
  });
}
