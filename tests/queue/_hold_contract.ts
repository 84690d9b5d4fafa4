/**
 * `holdForAtrn` (src/queue/_hold.ts, pg/_hold.ts), run by tests/queue/contract_test.ts against
 * both backends: mail waiting for the MX hosts of a domain that has become a user's is held for
 * its ATRN, and the counters kept by triggers (the gauges' waiting mail per route, the quota's
 * usage) follow it, before and after the mail is collected: no drift either way.
 */
import assert from "node:assert/strict";
import type { QueueStore } from "../../src/queue/types.ts";
import { delivered } from "../_helpers/queue_fixtures.ts";
import { type OutboundOpener, putRouted } from "./_outbound_contract.ts";

const W = { owner: "worker-1", leaseSeconds: 60 };
const BODY = "Subject: t\r\nMessage-ID: <m@local.test>\r\n\r\nb\r\n";
const SIZE = new TextEncoder().encode(BODY).length;

/** The gauges as [domain, route, messages, bytes], sorted. */
async function gauges(store: QueueStore): Promise<(string | number)[][]> {
  return (await store.domainStats()).map((s) => [s.domain, s.route, s.messages, s.bytes]).sort();
}

/** Collects (and settles as delivered) everything an ATRN of `domain` offers; the addresses. */
async function collect(store: QueueStore, domain: string): Promise<string[]> {
  const claim = await store.claim([domain], W);
  if (claim.kind !== "claimed") return [];
  const out: string[] = [];
  for await (const m of claim.lease.messages()) {
    for (const r of m.recipients) out.push(r.address);
    await claim.lease.settle(m.recipients.map((r) => delivered(m.id, r.id)));
  }
  await claim.lease.release();
  return out.sort();
}

export async function holdContract(t: Deno.TestContext, open: OutboundOpener): Promise<void> {
  await t.step("holdForAtrn: the domain's mx mail waits for ATRN, counters follow", async () => {
    await open(async (store, clock) => {
      await putRouted(store, clock, [
        ["a@new.test", "mx"],
        ["b@new.test", "mx"],
        ["c@far.test", "mx"],
        ["d@own.test", "atrn"],
      ]);
      const second = await putRouted(store, clock, [["e@new.test", "mx"]]);
      assert.deepEqual(await gauges(store), [
        ["far.test", "mx", 1, SIZE],
        ["new.test", "mx", 2, 2 * SIZE],
        ["own.test", "atrn", 1, SIZE],
      ]);
      assert.deepEqual(await store.usage("new.test"), { messages: 0, bytes: 0 });

      assert.equal(await store.holdForAtrn(["new.test", "nothing.test"]), 3);
      assert.deepEqual(await gauges(store), [
        ["far.test", "mx", 1, SIZE],
        ["new.test", "atrn", 2, 2 * SIZE],
        ["own.test", "atrn", 1, SIZE],
      ]);
      assert.deepEqual(await store.usage("new.test"), { messages: 2, bytes: 2 * SIZE });
      const held = (await store.get(second))?.recipients[0];
      assert.deepEqual([held?.route, held?.status, held?.nextAttemptAt], [
        "atrn",
        "queued",
        undefined,
      ]);
      // Held again: nothing left to move, nothing counted twice.
      assert.equal(await store.holdForAtrn(["new.test"]), 0);
      assert.deepEqual(await store.usage("new.test"), { messages: 2, bytes: 2 * SIZE });

      // The outbound worker finds only far.test; the new owner's ATRN gets the rest.
      const out = await store.claimOutbound({ ...W, now: clock.ms });
      assert.deepEqual(out?.domains, ["far.test"]);
      await out?.release();
      assert.deepEqual(await collect(store, "new.test"), [
        "a@new.test",
        "b@new.test",
        "e@new.test",
      ]);
      assert.deepEqual(await gauges(store), [
        ["far.test", "mx", 1, SIZE],
        ["own.test", "atrn", 1, SIZE],
      ]);
      assert.deepEqual(await store.usage("new.test"), { messages: 0, bytes: 0 });
      assert.deepEqual(await collect(store, "own.test"), ["d@own.test"]);
      assert.deepEqual(await store.usage("own.test"), { messages: 0, bytes: 0 });
      assert.deepEqual(await gauges(store), [["far.test", "mx", 1, SIZE]]);
    });
  });

  await t.step("holdForAtrn: a message already held there counts once", async () => {
    await open(async (store, clock) => {
      await putRouted(store, clock, [["x@new.test", "atrn"], ["y@new.test", "mx"]]);
      assert.deepEqual(await store.usage("new.test"), { messages: 1, bytes: SIZE });
      assert.equal(await store.holdForAtrn(["new.test"]), 1);
      assert.deepEqual(await gauges(store), [["new.test", "atrn", 1, SIZE]]);
      assert.deepEqual(await store.usage("new.test"), { messages: 1, bytes: SIZE });
      assert.deepEqual(await collect(store, "new.test"), ["x@new.test", "y@new.test"]);
      assert.deepEqual(await gauges(store), []);
      assert.deepEqual(await store.usage("new.test"), { messages: 0, bytes: 0 });
      // A gauge with nothing queued behind it is not shown: new mail shows what it holds.
      await putRouted(store, clock, [["z@new.test", "mx"], ["w@new.test", "atrn"]]);
      assert.deepEqual(await gauges(store), [
        ["new.test", "atrn", 1, SIZE],
        ["new.test", "mx", 1, SIZE],
      ]);
    });
  });

  await t.step(
    "holdForAtrn: failed mx recipients stay; one in flight settles where it is held",
    async () => {
      await open(async (store, clock) => {
        const id = await putRouted(store, clock, [["a@new.test", "mx"], ["b@new.test", "mx"]]);
        const lease = await store.claimOutbound({ ...W, now: clock.ms });
        assert.deepEqual(lease?.domains, ["new.test"]);
        const [m] = await Array.fromAsync(lease?.messages() ?? []);
        const [a, b] = m?.recipients ?? [];
        assert.ok(a !== undefined && b !== undefined);
        // a refused for good before the domain was ours; b still waiting (its batch running).
        await lease?.settle([{
          recipientId: a.id,
          messageId: id,
          outcome: "failed",
          reply: "550 x",
        }]);
        assert.equal(await store.holdForAtrn(["new.test"]), 1);
        await lease?.settle([
          {
            recipientId: b.id,
            messageId: id,
            outcome: "deferred",
            reply: "451 y",
            retryAt: clock.ms,
          },
        ]);
        await lease?.release();
        const after = (await store.get(id))?.recipients.map((r) => [r.address, r.route, r.status]);
        assert.deepEqual(after, [["a@new.test", "mx", "failed"], ["b@new.test", "atrn", "queued"]]);
        assert.deepEqual(await gauges(store), [["new.test", "atrn", 1, SIZE]]);
        assert.deepEqual(await store.usage("new.test"), { messages: 1, bytes: SIZE });
        assert.equal(await store.claimOutbound({ ...W, now: clock.ms + 3_600_000 }), undefined);
        assert.deepEqual(await collect(store, "new.test"), ["b@new.test"]);
        assert.deepEqual(await gauges(store), []);
        assert.deepEqual(await store.usage("new.test"), { messages: 0, bytes: 0 });
      });
    },
  );
}
