/**
 * The PostgreSQL reader sends a body only whole (#13, as the SQLite reader since review rev13c
 * F2): chunks seq 0..n-1 holding the message's `size` in bytes, else an error before the first
 * byte. It used to stream whatever rows were there: a chunk missing in the middle or at the end,
 * or a size the chunks do not add up to, went out as if it were the message. The drain now
 * sends nothing of such a message, logs `message_unreadable` naming it, and keeps it queued
 * with 451. Each body is damaged with direct SQL on the store's database.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { assertDrainRefuses, bytesBeforeFailure, drainOnce } from "../_helpers/drain_once.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";

/** Small chunks: the body below is 5 of them (4 full, one short), more than one page of 16 not. */
const CHUNK = 1024;
/** Lines of text, CRLF-ended: 4 full chunks and a short one. */
const BODY = (() => {
  const line = new TextEncoder().encode(`${"x".repeat(62)}\r\n`);
  const out = new Uint8Array(4 * CHUNK + 64 * 3);
  for (let at = 0; at < out.length; at += line.length) out.set(line, at);
  return out;
})();
/** 40 chunks: more than one page (16 rows) of reads. */
const LONG_BODY = new Uint8Array(40 * CHUNK).map((_, i) =>
  i % 64 === 63 ? 0x0a : i % 64 === 62 ? 0x0d : 0x61
);

const DAMAGES: readonly (readonly [string, string])[] = [
  [
    "a chunk in the middle is missing",
    "DELETE FROM message_chunks WHERE message_id = $1 AND seq = 2",
  ],
  ["the last chunk is missing", "DELETE FROM message_chunks WHERE message_id = $1 AND seq = 4"],
  ["the first chunk is missing", "DELETE FROM message_chunks WHERE message_id = $1 AND seq = 0"],
  [
    "a chunk is cut short",
    "UPDATE message_chunks SET bytes = substring(bytes FROM 1 FOR 10) WHERE message_id = $1 AND seq = 1",
  ],
  ["the size says a byte more", "UPDATE messages SET size = size + 1 WHERE id = $1"],
  ["the size says a byte less", "UPDATE messages SET size = size - 1 WHERE id = $1"],
];

await postgresTest(
  "PostgreSQL: a damaged body is never read or drained as the message (#13)",
  async (pg, t) => {
    const url = await pg.createDatabase("body_check");
    const store = await PgQueueStore.open({ url }, { nodeId: "node-a", chunkBytes: CHUNK });
    const raw = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await t.step("whole bodies, one page of chunks or several, drain as received", async () => {
        const one = await queueMessage(store, { to: ["a@whole.test"], body: BODY });
        const long = await queueMessage(store, { to: ["b@whole.test"], body: LONG_BODY });
        assert.deepEqual(await collectBytes(store.readBody(one)), BODY);
        assert.deepEqual(await collectBytes(store.readBody(long)), LONG_BODY);
        const drained = await drainOnce(store, "whole.test");
        assert.equal(drained.summary.delivered, 2);
        assert.deepEqual(drained.bodies, [BODY, LONG_BODY]);
      });
      for (const [n, [damage, sql]] of DAMAGES.entries()) {
        await t.step(`not sent when ${damage}`, async () => {
          const domain = `d${n}.test`;
          const id = await queueMessage(store, { to: [`a@${domain}`], body: BODY });
          await raw.unsafe(sql, [id]);
          assert.equal(await bytesBeforeFailure(store, id), 0);
          await assertDrainRefuses(store, id, domain);
        });
      }
      await t.step("a gap past the first page of chunks stops the read there", async () => {
        const id = await queueMessage(store, { to: ["a@gap.test"], body: LONG_BODY });
        // The whole-body check passed already when the gap appears (a concurrent removal).
        const reading = store.readBody(id)[Symbol.asyncIterator]();
        const first = await reading.next();
        assert.equal(first.value?.length, CHUNK);
        await raw`DELETE FROM message_chunks WHERE message_id = ${id} AND seq = 20`;
        let yielded = CHUNK;
        await assert.rejects(async () => {
          for (;;) {
            const next = await reading.next();
            if (next.done) return;
            yielded += next.value.length;
          }
        }, /chunk 20 is missing/);
        assert.equal(yielded, 20 * CHUNK);
      });
      await t.step(
        "a message deleted before its body is read is an error, not an empty body",
        async () => {
          const id = await queueMessage(store, { to: ["a@gone.test"], body: BODY });
          await store.delete([id]);
          assert.equal(await bytesBeforeFailure(store, id), 0);
        },
      );
    } finally {
      await raw.end({ timeout: 1 });
      await store.close();
    }
  },
);
