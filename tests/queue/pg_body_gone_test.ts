/**
 * On PostgreSQL a message's chunk rows go with it: its last recipient settled, its domain
 * deleted, the message deleted (src/queue/pg/_emptied.ts, store.ts). The contract test checked
 * this by reading the gone message's body as empty; since a gone message's body read is an
 * error whatever chunks are left (#13), that read no longer sees them, so the rows are counted
 * here (review rev14: coverage kept; each check fails with the chunk DELETE taken out).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { delivered, queueMessage } from "../_helpers/queue_fixtures.ts";

const CHUNK = 1024;
/** Three chunk rows and a short one. */
const BODY = new Uint8Array(3 * CHUNK + 10).fill(0x61);

await postgresTest("PostgreSQL: a message's chunk rows go with it (#13)", async (pg, t) => {
  const url = await pg.createDatabase("body_gone");
  const store = await PgQueueStore.open({ url }, { nodeId: "node-a", chunkBytes: CHUNK });
  const raw = postgres(url, { max: 1, onnotice: () => {} });
  const chunksOf = async (id: string) =>
    Number(
      (await raw`SELECT count(*)::int AS n FROM message_chunks WHERE message_id = ${id}`)[0]?.n,
    );
  try {
    const keep = await queueMessage(store, { to: ["a@keep.test"], body: BODY });
    assert.equal(await chunksOf(keep), 4);
    await t.step("settled: its last recipient delivered", async () => {
      const id = await queueMessage(store, { to: ["a@settle.test"], body: BODY });
      assert.equal(await chunksOf(id), 4);
      const claimed = await store.claim(["settle.test"], { owner: "t", leaseSeconds: 60 });
      assert.equal(claimed.kind, "claimed");
      const lease = (claimed as Extract<typeof claimed, { kind: "claimed" }>).lease;
      const [m] = await Array.fromAsync(lease.messages());
      const r = m?.recipients[0];
      assert.ok(r);
      await lease.settle([delivered(id, r.id)]);
      await lease.release();
      assert.equal(await store.get(id), undefined);
      assert.equal(await chunksOf(id), 0);
    });
    await t.step("its domain deleted", async () => {
      const id = await queueMessage(store, { to: ["a@drop.test"], body: BODY });
      assert.equal(await store.deleteDomain("drop.test"), 1);
      assert.equal(await chunksOf(id), 0);
    });
    await t.step("the message deleted", async () => {
      const id = await queueMessage(store, { to: ["a@one.test"], body: BODY });
      assert.equal(await store.delete([id]), 1);
      assert.equal(await chunksOf(id), 0);
    });
    // Nothing of another message went with them.
    assert.equal(await chunksOf(keep), 4);
  } finally {
    await raw.end({ timeout: 1 });
    await store.close();
  }
});
