/**
 * A settlement names its recipient by row id and by message id (src/queue/types.ts
 * `Settlement.messageId`), on both backends: one whose recipient id belongs to another message
 * by the time it is recorded changes nothing, whatever its outcome and whatever else its batch
 * holds. SQLite gives a deleted highest row id to the next recipient (settle_reused_id_test.ts
 * shows how a drain gets there); PostgreSQL does not reuse ids, but the contract is one.
 */
import assert from "node:assert/strict";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import type { Lease, QueueStore } from "../../src/queue/types.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { queueMessage, withStore } from "../_helpers/queue_fixtures.ts";

type Opener = (fn: (store: QueueStore) => Promise<void>) => Promise<void>;

async function claim(store: QueueStore, domains: string[]): Promise<Lease> {
  const result = await store.claim(domains, { owner: "drain-1", leaseSeconds: 60 });
  if (result.kind !== "claimed") throw new Error(`claim: ${result.kind}`);
  return result.lease;
}

/** The row id of `address` in message `id`. */
async function recipientOf(store: QueueStore, id: string, address: string): Promise<number> {
  const found = (await store.get(id))?.recipients.find((r) => r.address === address);
  if (found === undefined) throw new Error(`${address} is not in ${id}`);
  return found.id;
}

/** What is left of message `id`: address, status, attempts, last reply. */
async function left(store: QueueStore, id: string): Promise<unknown[] | undefined> {
  return (await store.get(id))?.recipients.map((r) => [
    r.address,
    r.status,
    r.attempts,
    r.lastReply,
  ]);
}

async function cases(t: Deno.TestContext, open: Opener): Promise<void> {
  await t.step(
    "a delivered batch removes only the recipients it names with their message",
    async () => {
      await open(async (store) => {
        const a = await queueMessage(store, { from: "s@b.test", to: ["u@c.test"] });
        const b = await queueMessage(store, { from: "s@b.test", to: ["v@c.test", "x@d.test"] });
        const lease = await claim(store, ["c.test", "d.test"]);
        await lease.settle([
          // x belongs to b, not a: as if a's recipient had had x's id before a was removed.
          {
            recipientId: await recipientOf(store, b, "x@d.test"),
            messageId: a,
            outcome: "delivered",
            reply: "250 ok",
          },
          {
            recipientId: await recipientOf(store, b, "v@c.test"),
            messageId: b,
            outcome: "delivered",
            reply: "250 ok",
          },
        ]);
        await lease.release();
        assert.deepEqual(await left(store, b), [["x@d.test", "queued", 0, undefined]]);
        assert.deepEqual(await left(store, a), [["u@c.test", "queued", 0, undefined]]);
      });
    },
  );
  await t.step("deferred and failed naming another message leave its recipient alone", async () => {
    await open(async (store) => {
      const a = await queueMessage(store, { from: "s@b.test", to: ["u@c.test"] });
      const b = await queueMessage(store, { from: "s@b.test", to: ["v@c.test", "w@c.test"] });
      const lease = await claim(store, ["c.test"]);
      await lease.settle([
        {
          recipientId: await recipientOf(store, b, "v@c.test"),
          messageId: a,
          outcome: "deferred",
          reply: "451 later",
          retryAt: 1,
        },
        {
          recipientId: await recipientOf(store, b, "w@c.test"),
          messageId: a,
          outcome: "failed",
          reply: "550 no",
        },
      ]);
      await lease.release();
      assert.deepEqual(await left(store, b), [
        ["v@c.test", "queued", 0, undefined],
        ["w@c.test", "queued", 0, undefined],
      ]);
    });
  });
}

Deno.test("a settlement changes only the recipient of the message it names: SQLite", async (t) => {
  await cases(t, (fn) => withStore((store) => fn(store)));
});

let databases = 0;

await postgresTest(
  "a settlement changes only the recipient of the message it names: PostgreSQL",
  async (pg, t) => {
    await cases(t, async (fn) => {
      const url = await pg.createDatabase(`settle_names_${++databases}`);
      const store = await PgQueueStore.open({ url }, { nodeId: "node-a" });
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    });
  },
);
