/**
 * Review wt16-r3: on PostgreSQL a message goes with its last recipient (deleteEmptied in
 * src/queue/pg/_emptied.ts: `DELETE FROM messages … AND NOT EXISTS (recipients)`). Two
 * transactions that each remove one of a message's last two recipients (two nodes draining
 * the message's two domains, or a settle beside maintenance) each still see the other's
 * recipient (not committed yet, READ COMMITTED), so neither deletes the message: it stays
 * with no recipient, and its body chunks with it, for good (nothing looks at a message without
 * recipients again; orphan removal only takes chunks without a message). Here both
 * transactions are held at COMMIT (a deferred trigger waiting on an advisory lock the test
 * holds) until both have run their statements: the interleaving two nodes can produce.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import type { Lease } from "../../src/queue/types.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";

const GATE = 4242;
const BODY = new Uint8Array(3000).fill(0x61);

await postgresTest(
  "PostgreSQL: a message whose last two recipients are settled at once by two nodes goes with them (review wt16-r3)",
  async (pg) => {
    const url = await pg.createDatabase("emptied_race");
    const a = await PgQueueStore.open({ url }, { nodeId: "node-a", chunkBytes: 1024 });
    const b = await PgQueueStore.open({ url }, { nodeId: "node-b", chunkBytes: 1024 });
    const raw = postgres(url, { max: 1, onnotice: () => {} });
    const gate = postgres(url, { max: 1, onnotice: () => {} });
    const leases: Lease[] = [];
    try {
      const id = await queueMessage(a, { to: ["u@a.test", "u@b.test"], body: BODY });
      const take = async (store: PgQueueStore, domain: string) => {
        const c = await store.claim([domain], { owner: `drain-${domain}`, leaseSeconds: 60 });
        assert.equal(c.kind, "claimed");
        const lease = (c as Extract<typeof c, { kind: "claimed" }>).lease;
        leases.push(lease);
        const [m] = await Array.fromAsync(lease.messages());
        const r = m?.recipients[0];
        assert.ok(r !== undefined);
        return { lease, recipientId: r.id, messageId: m?.id ?? "" };
      };
      const onA = await take(a, "a.test");
      const onB = await take(b, "b.test");
      // Each transaction that deletes a recipient waits at COMMIT until the gate opens.
      await raw.unsafe(`CREATE FUNCTION test_gate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock_shared(${GATE}); RETURN NULL; END $$`);
      await raw.unsafe(`CREATE CONSTRAINT TRIGGER test_gate AFTER DELETE ON recipients
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_gate()`);
      await gate`SELECT pg_advisory_lock(${GATE})`;
      const settled = [onA, onB].map(({ lease, recipientId, messageId }) =>
        lease.settle([{ recipientId, messageId, outcome: "delivered", reply: "250 ok" }])
      );
      // Both have run their statements and wait (bounded: 500 x 10 ms).
      let waiting = 0;
      for (let i = 0; i < 500 && waiting < 2; i++) {
        await new Promise((r) => setTimeout(r, 10));
        // At the gate, or (one settlement serialised behind the other) on its row lock.
        const [row] = await raw`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted`;
        waiting = Number(row?.n);
      }
      assert.equal(waiting, 2, "both settlements wait");
      await gate`SELECT pg_advisory_unlock(${GATE})`;
      await Promise.all(settled);
      const [left] = await raw`SELECT
          (SELECT count(*)::int FROM recipients WHERE message_id = ${id}) AS recipients,
          (SELECT count(*)::int FROM messages WHERE id = ${id}) AS messages,
          (SELECT count(*)::int FROM message_chunks WHERE message_id = ${id}) AS chunks`;
      assert.deepEqual(
        { recipients: left?.recipients, messages: left?.messages, chunks: left?.chunks },
        { recipients: 0, messages: 0, chunks: 0 },
        "the message and its body stay with no recipient",
      );
    } finally {
      for (const lease of leases) await lease.release();
      await gate.end({ timeout: 1 });
      await raw.end({ timeout: 1 });
      await b.close();
      await a.close();
    }
  },
);
