/**
 * A write told that its commit failed (451 after DATA; a settlement "not recorded") is never
 * committed afterwards (#14): when the database is only slow (here another session holds a
 * table lock longer than the deadline), the deadline rolls the group transaction back before
 * its COMMIT is sent. Before, the transaction carried on and committed: the sender's retry
 * made a duplicate, and a settlement recorded "failed" that its drain believed unrecorded.
 */
import assert from "node:assert/strict";
import { connectPostgres } from "../../src/queue/pg/connect.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import type { Lease } from "../../src/queue/types.ts";
import { postgresTest } from "../_helpers/postgres.ts";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
const enc = new TextEncoder();

await postgresTest(
  "a message or settlement that failed its commit deadline is not committed after all (#14)",
  async (pg) => {
    const url = await pg.createDatabase("slow_commit");
    const store = await PgQueueStore.open({ url }, { nodeId: "n1", commitDeadlineMs: 500 });
    const admin = await connectPostgres({ url, max: 1 });
    /** Another session holds `table` locked for 1.5 s (an operator's statement, a migration). */
    const lockFor1500ms = async (table: "messages" | "recipients") => {
      let isLocked = false;
      const held = admin.begin(async (tx) => {
        await (table === "messages"
          ? tx`LOCK TABLE messages IN ACCESS EXCLUSIVE MODE`
          : tx`LOCK TABLE recipients IN ACCESS EXCLUSIVE MODE`);
        isLocked = true;
        await tx`SELECT pg_sleep(1.5)`;
      });
      for (let i = 0; i < 100 && !isLocked; i++) await tick(10);
      assert.ok(isLocked, `${table} locked`);
      return { released: () => held };
    };
    const queue = async (address: string) => {
      const w = await store.begin({
        mailFrom: "s@example.net",
        params: {},
        recipients: [{ address, domain: "example.org" }],
      });
      await w.write(enc.encode(`Subject: ${address}\r\n\r\nbody\r\n`));
      return { id: w.id, commit: () => w.commit().then(() => "committed", (e) => String(e)) };
    };
    try {
      const late = await queue("u1@example.org");
      const locked = await lockFor1500ms("messages");
      assert.match(await late.commit(), /no COMMIT within 500 ms/);
      await locked.released();
      await tick(300);
      const ids = (await store.list()).map((m) => m.id);
      assert.ok(!ids.includes(late.id), "the message answered 451 is not in the queue");

      const kept = await queue("u2@example.org");
      assert.equal(await kept.commit(), "committed");
      const claim = await store.claim(["example.org"], { owner: "s1", leaseSeconds: 60 });
      assert.equal(claim.kind, "claimed");
      const lease = (claim as { lease: Lease }).lease;
      let recipientId: number | undefined;
      for await (const m of lease.messages()) recipientId ??= m.recipients[0]?.id;
      assert.ok(recipientId !== undefined);
      const lockedRecipients = await lockFor1500ms("recipients");
      const settled = await lease.settle([
        { recipientId, messageId: kept.id, outcome: "failed", reply: "550 5.1.1 no such user" },
      ]).then(() => "recorded", (e) => `not recorded: ${e}`);
      await lockedRecipients.released();
      await tick(300);
      assert.match(settled, /not recorded/);
      const [row] = await admin`SELECT status FROM recipients WHERE id = ${recipientId}`;
      assert.equal(row?.status, "queued", "a settlement its drain was told failed is not stored");
      await lease.release();
    } finally {
      await admin.end({ timeout: 1 });
      await store.close();
    }
  },
);
