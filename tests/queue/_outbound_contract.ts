/**
 * The outbound half of the QueueStore contract (mx-route recipients, outbound leases), run by
 * tests/queue/contract_test.ts against both backends: what the outbound worker relies on.
 */
import assert from "node:assert/strict";
import type { Lease, QueuedMessage, QueueStore, Route } from "../../src/queue/types.ts";
import { delivered, queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";

export const T0 = 1_700_000_000_000;
const MINUTE = 60_000;

export interface Clock {
  ms: number;
}

/**
 * Opens a fresh, empty store of one backend whose clock starts at T0; `reopen()` closes it and
 * opens the same data again (a restart), returning the new store; all is closed and removed
 * after `fn`.
 */
export type OutboundOpener = (
  fn: (store: QueueStore, clock: Clock, reopen: () => Promise<QueueStore>) => Promise<void>,
) => Promise<void>;

const W = { owner: "worker-1", leaseSeconds: 60 };

/** Puts a message one second after the clock's last one; recipients as `[address, route]`. */
export async function putRouted(
  store: QueueStore,
  clock: Clock,
  recipients: readonly (readonly [string, Route])[],
  opts: { from?: string; notify?: string; body?: string } = {},
): Promise<string> {
  clock.ms += 1000;
  return await queueMessage(store, {
    from: opts.from ?? "s@local.test",
    to: recipients.map(([address, route]) =>
      rcpt(address, { route, ...(opts.notify !== undefined ? { notify: opts.notify } : {}) })
    ),
    body: opts.body ?? "Subject: t\r\nMessage-ID: <m@local.test>\r\n\r\nb\r\n",
  });
}

/** The addresses a lease offers, in order. */
export async function offered(lease: Lease): Promise<string[]> {
  const out: string[] = [];
  for await (const m of lease.messages()) for (const r of m.recipients) out.push(r.address);
  return out;
}

async function messagesOf(lease: Lease): Promise<QueuedMessage[]> {
  return await Array.fromAsync(lease.messages());
}

/** Claims one destination at the clock's time, or fails the test. */
async function mustClaim(store: QueueStore, clock: Clock, owner = W.owner): Promise<Lease> {
  const lease = await store.claimOutbound({ ...W, owner, now: clock.ms });
  assert.ok(lease, "an outbound claim was expected to succeed");
  return lease;
}

/** The routing and leasing cases. */
export async function outboundContract(t: Deno.TestContext, open: OutboundOpener): Promise<void> {
  await t.step(
    "ATRN sees only route atrn; usage counts atrn only; outbound sees only mx",
    async () => {
      await open(async (store, clock) => {
        await putRouted(store, clock, [["a@example.com", "atrn"], ["b@example.com", "mx"]]);
        await putRouted(store, clock, [["c@example.com", "mx"]]);
        const size = new TextEncoder().encode(
          "Subject: t\r\nMessage-ID: <m@local.test>\r\n\r\nb\r\n",
        ).length;
        assert.deepEqual(await store.usage("example.com"), { messages: 1, bytes: size });
        const atrn = await store.claim(["example.com"], W);
        assert.equal(atrn.kind, "claimed");
        if (atrn.kind !== "claimed") return;
        assert.deepEqual(await offered(atrn.lease), ["a@example.com"]);
        await atrn.lease.release();
        const out = await mustClaim(store, clock);
        assert.deepEqual(out.domains, ["example.com"]);
        const msgs = await messagesOf(out);
        assert.deepEqual(msgs.flatMap((m) => m.recipients.map((r) => [r.address, r.route])), [
          ["b@example.com", "mx"],
          ["c@example.com", "mx"],
        ]);
        await out.release();
        // Only mx recipients left: ATRN finds nothing for the domain.
        await putRouted(store, clock, [["d@only-mx.test", "mx"]]);
        assert.equal((await store.claim(["only-mx.test"], W)).kind, "empty");
        assert.deepEqual(await store.usage("only-mx.test"), { messages: 0, bytes: 0 });
        const stats = await store.domainStats();
        assert.deepEqual(
          stats.map((s) => [s.domain, s.route, s.messages]),
          [["example.com", "atrn", 1], ["example.com", "mx", 2], ["only-mx.test", "mx", 1]],
        );
      });
    },
  );

  await t.step("an mx lease and an ATRN claim of one domain both succeed", async () => {
    await open(async (store, clock) => {
      await putRouted(store, clock, [["a@example.com", "atrn"], ["b@example.com", "mx"]]);
      const out = await mustClaim(store, clock);
      const atrn = await store.claim(["example.com"], { owner: "atrn-1", leaseSeconds: 60 });
      assert.equal(atrn.kind, "claimed");
      // Each namespace is still exclusive within itself.
      assert.equal(
        (await store.claim(["example.com"], { owner: "atrn-2", leaseSeconds: 60 })).kind,
        "busy",
      );
      assert.equal(
        await store.claimOutbound({ ...W, owner: "worker-2", now: clock.ms }),
        undefined,
      );
      const listed = (await store.list())[0]?.recipients.map((r) => [r.address, r.status]);
      assert.deepEqual(listed, [["a@example.com", "delivering"], ["b@example.com", "delivering"]]);
      await out.release();
      if (atrn.kind === "claimed") await atrn.lease.release();
    });
  });

  await t.step(
    "new mx recipients are due at once; deferred with retryAt waits until then",
    async () => {
      await open(async (store, clock) => {
        assert.equal(await store.nextOutboundAt(), undefined);
        assert.equal(await store.claimOutbound({ ...W, now: clock.ms }), undefined);
        const id = await putRouted(store, clock, [["a@far.test", "mx"]]);
        const received = clock.ms;
        assert.equal(await store.nextOutboundAt(), received);
        const listed = await store.get(id);
        assert.equal(listed?.recipients[0]?.nextAttemptAt, received);
        // Due exactly at its time, not a millisecond before.
        assert.equal(await store.claimOutbound({ ...W, now: received - 1 }), undefined);
        const lease = await mustClaim(store, clock);
        const [message] = await messagesOf(lease);
        const rid = message?.recipients[0]?.id ?? -1;
        const retryAt = clock.ms + 5 * MINUTE;
        await lease.settle([{
          recipientId: rid,
          messageId: id,
          outcome: "deferred",
          reply: "451 4.3.0 later",
          retryAt,
        }]);
        await lease.release();
        const after = (await store.get(id))?.recipients[0];
        assert.equal(after?.status, "queued");
        assert.equal(after?.attempts, 1);
        assert.equal(after?.lastReply, "451 4.3.0 later");
        assert.equal(after?.nextAttemptAt, retryAt);
        assert.equal(await store.nextOutboundAt(), retryAt);
        assert.equal(await store.claimOutbound({ ...W, now: retryAt - 1 }), undefined, "N-1");
        clock.ms = retryAt;
        const again = await mustClaim(store, clock);
        assert.deepEqual(await offered(again), ["a@far.test"]);
        await again.settle([delivered(id, rid)]);
        await again.release();
        assert.equal(await store.get(id), undefined);
        assert.equal(await store.nextOutboundAt(), undefined);
      });
    },
  );

  await t.step(
    "outbound claims take the oldest due destination, one domain per lease",
    async () => {
      await open(async (store, clock) => {
        await putRouted(store, clock, [["a@one.test", "mx"], ["b@two.test", "mx"]]);
        await putRouted(store, clock, [["c@two.test", "mx"]]);
        const first = await mustClaim(store, clock);
        const second = await mustClaim(store, clock, "worker-2");
        assert.deepEqual([first.domains, second.domains].sort(), [["one.test"], ["two.test"]]);
        const two = first.domains[0] === "two.test" ? first : second;
        assert.deepEqual(await offered(two), ["b@two.test", "c@two.test"]);
        assert.equal(
          await store.claimOutbound({ ...W, owner: "worker-3", now: clock.ms }),
          undefined,
        );
        // A not-yet-due recipient is not offered by a lease of its domain.
        const msgs = await messagesOf(two);
        const rid = msgs[0]?.recipients[0]?.id ?? -1;
        await two.settle([{
          recipientId: rid,
          messageId: msgs[0]?.id ?? "",
          outcome: "deferred",
          reply: "421 4.4.2 bye",
          retryAt: clock.ms + MINUTE,
        }]);
        await two.release();
        const back = await mustClaim(store, clock, "worker-4");
        assert.deepEqual(back.domains, ["two.test"]);
        assert.deepEqual(await offered(back), ["c@two.test"]);
        // Listed: the due one is being delivered, the deferred one waits for its time.
        const listed = (await store.list({ domain: "two.test" })).flatMap((m) =>
          m.recipients.map((r) => [r.address, r.status])
        );
        assert.deepEqual(listed, [["b@two.test", "queued"], ["c@two.test", "delivering"]]);
      });
    },
  );

  await t.step(
    "a dead owner's outbound lease expires and its recipients are claimable again",
    async () => {
      await open(async (store, clock, reopen) => {
        await putRouted(store, clock, [["a@far.test", "mx"]]);
        await mustClaim(store, clock, "dead-worker"); // never renewed nor released: killed
        clock.ms += 59_999;
        assert.equal(await store.claimOutbound({ ...W, now: clock.ms }), undefined, "1 ms before");
        clock.ms += 1;
        const other = await reopen();
        const lease = await mustClaim(other, clock, "live-worker");
        assert.deepEqual(await offered(lease), ["a@far.test"]);
      });
    },
  );
}
