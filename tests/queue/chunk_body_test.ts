/**
 * A body kept in `message_chunks` rows (before schema step 8, or a store without body files)
 * is read only whole: chunks seq 0..n-1 holding the message's size in bytes. A gap or a short
 * tail is an error before the first byte (review rev13c F2), never a truncated message sent,
 * shown, or quoted in a report.
 */
import assert from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { checkBody } from "../../src/smtp/_sender_check.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

/** Four 64 KiB chunk rows and a short one. */
const BODY = new Uint8Array(4 * 65_536 + 100).fill(0x61);

for (
  const [damage, sql] of [
    [
      "a chunk in the middle is missing",
      "DELETE FROM message_chunks WHERE message_id = ? AND seq = 1",
    ],
    ["the last chunk is missing", "DELETE FROM message_chunks WHERE message_id = ? AND seq = 4"],
    ["the first chunk is missing", "DELETE FROM message_chunks WHERE message_id = ? AND seq = 0"],
    ["the size says more", "UPDATE messages SET size = size + 1 WHERE id = ?"],
  ] as const
) {
  Deno.test(`a chunked body is an error before its first byte when ${damage}`, async () => {
    await withTempDataDir(async (dataDir) => {
      const store = new SqliteQueueStore(openDatabase(dataDir), { bodyFiles: false });
      try {
        const id = await queueMessage(store, { to: ["a@example.org"], body: BODY });
        assert.deepEqual(await collectBytes(store.readBody(id)), BODY);
        const raw = openDatabase(dataDir);
        try {
          raw.prepare(sql).run(id);
        } finally {
          raw.close();
        }
        let yielded = 0;
        await assert.rejects(
          async () => {
            for await (const chunk of store.readBody(id)) yielded += chunk.length;
          },
          new RegExp(`Cannot read body of message "${id}": .*stored incomplete`),
        );
        assert.equal(yielded, 0, "no byte of a damaged body");
        // The drain defers such a message (4xx to nobody, retried), it does not send it or crash.
        const checked = await checkBody(() => store.readBody(id), {
          params: {},
          peerHasEightBitMime: true,
        });
        assert.equal(checked.kind, "unreadable");
      } finally {
        await store.close();
      }
    });
  });
}

Deno.test("a chunked body of no bytes reads as empty", async () => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir), { bodyFiles: false });
    try {
      const id = await queueMessage(store, { to: ["a@example.org"], body: new Uint8Array(0) });
      assert.deepEqual(await collectBytes(store.readBody(id)), new Uint8Array(0));
    } finally {
      await store.close();
    }
  });
});
