/**
 * Review wt16-r1 F: a lease settles recipients by their row id alone (src/queue/_lease.ts:
 * `DELETE FROM recipients WHERE id IN …`, and the message with them when none is left), and
 * SQLite's `recipients.id INTEGER PRIMARY KEY` (no AUTOINCREMENT) gives the next row the highest
 * id + 1: once the highest recipient is deleted, the next recipient inserted gets its id again.
 * A drain whose message was removed under it (a second drain after its lease ran out, review B;
 * or `queue delete` by the operator) then settles a different, newer message: its "delivered"
 * deletes that message, which nobody ever received and whose sender heard 250 (mail lost,
 * silently); its "failed" marks it failed and bounces it.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { queueMessage, withStore } from "../_helpers/queue_fixtures.ts";
import type { Lease, QueueStore, SettleOutcome } from "../../src/queue/types.ts";

/** A message and its recipient in flight. */
interface InFlight {
  readonly message: string;
  readonly recipient: number;
}

async function firstRecipient(lease: Lease): Promise<InFlight> {
  for await (const m of lease.messages()) {
    const r = m.recipients[0];
    if (r !== undefined) return { message: m.id, recipient: r.id };
  }
  throw new Error("the lease lists nothing");
}

/**
 * Queues a message to u@c.test and has drain-1 claim c.test and list it; `remove` takes it
 * away under that lease. A newer message to `newerTo` is then acknowledged (queued), and
 * drain-1 settles the recipient it had in flight with `outcome`: the newer message must still
 * be waiting, untouched (`why` otherwise).
 */
async function settleLate(
  store: QueueStore,
  remove: (inFlight: InFlight) => Promise<void>,
  late: { newerTo: string; outcome: SettleOutcome; reply: string; why: string },
): Promise<void> {
  await queueMessage(store, { from: "a@b.test", to: ["u@c.test"] });
  const first = await store.claim(["c.test"], { owner: "drain-1", leaseSeconds: 300 });
  if (first.kind !== "claimed") throw new Error(`claim: ${first.kind}`);
  const inFlight = await firstRecipient(first.lease);
  await remove(inFlight);
  const newer = await queueMessage(store, { from: "s@b.test", to: [late.newerTo] });
  await first.lease.settle([{
    recipientId: inFlight.recipient,
    messageId: inFlight.message,
    outcome: late.outcome,
    reply: late.reply,
  }]);
  const kept = await store.get(newer);
  assertEquals(
    kept?.recipients.map((r) => [r.address, r.status]),
    [[late.newerTo, "queued"]],
    `message ${newer} ${late.why}`,
  );
  await first.lease.release();
}

Deno.test("a late settlement of a message removed under its lease never touches the newer message that reuses its recipient id (review wt16-r1 F)", async (t) => {
  await t.step("removed by a second drain after the first one's lease ran out", async () => {
    let now = 1_800_000_000_000;
    await withStore(async (store) => {
      await settleLate(store, async (inFlight) => {
        // drain-1 waits for its customer's reply past the lease; a second poll takes the domain.
        now += 301_000;
        const second = await store.claim(["c.test"], { owner: "drain-2", leaseSeconds: 300 });
        if (second.kind !== "claimed") throw new Error(`second claim: ${second.kind}`);
        const again = await firstRecipient(second.lease);
        assertEquals(again, inFlight);
        await second.lease.settle([{
          recipientId: again.recipient,
          messageId: again.message,
          outcome: "delivered",
          reply: "250 ok",
        }]);
        await second.lease.release();
      }, {
        // drain-1's customer now accepts the first message: drain-1 settles what it sent.
        newerTo: "v@c.test",
        outcome: "delivered",
        reply: "250 ok",
        why: "(acknowledged, never delivered) was settled by another message's reply",
      });
    }, { now: () => now });
  });
  await t.step("removed by `queue delete` while its drain waits", async () => {
    await withStore(async (store) => {
      await settleLate(store, async (inFlight) => {
        assertEquals(await store.delete([inFlight.message]), 1);
      }, {
        newerTo: "w@other.test",
        outcome: "failed",
        reply: "550 no",
        why: "of another domain was failed by a reply about a deleted message",
      });
    });
  });
});
