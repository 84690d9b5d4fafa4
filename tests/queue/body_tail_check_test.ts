/**
 * A chunked body whose tail goes while it is read is an error, never a shorter body that ends
 * well (review rev14 F1). The whole-body check runs with the first page of chunk rows; the
 * pages after it are read later, and a message deleted meanwhile (`queue delete`, another node's
 * expiry) used to leave them empty or short: the read ended as if the body were whole, and the
 * drain completed the message with "." (a truncated copy delivered), a report quoted it cut.
 * SQLite (a store without body files, chunk rows of older schemas) and PostgreSQL alike.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { openDatabase } from "../../src/queue/db.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { QueueStore } from "../../src/queue/types.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

/** Small chunks: pages of 16 rows are 16 KiB. */
const CHUNK = 1024;
/** 40 chunks: three pages of reads (16, 16, 8). */
const BODY = new Uint8Array(40 * CHUNK).map((_, i) => 0x61 + (i % 26));

/**
 * Reads the first chunk of `id`, runs `damage`, then reads on: the bytes read and whether the
 * read ended as if whole (`ended`) or threw (`error`).
 */
async function readAcross(
  store: QueueStore,
  id: string,
  damage: () => Promise<void>,
): Promise<{ bytes: number; ended: boolean; error?: string }> {
  const reading = store.readBody(id)[Symbol.asyncIterator]();
  const first = await reading.next();
  assert.equal(first.value?.length, CHUNK);
  await damage();
  let bytes = CHUNK;
  try {
    for (;;) {
      const next = await reading.next();
      if (next.done) return { bytes, ended: true };
      bytes += next.value.length;
    }
  } catch (err) {
    return { bytes, ended: false, error: String(err) };
  }
}

function assertNotWhole(
  read: { bytes: number; ended: boolean; error?: string },
  id: string,
  what: string,
): void {
  assert.ok(read.bytes < BODY.length, `${what}: read ${read.bytes} bytes`);
  assert.equal(
    read.ended,
    false,
    `${what}: a read of ${read.bytes} of ${BODY.length} bytes ended as if whole`,
  );
  assert.match(read.error ?? "", new RegExp(`Cannot read body of message "${id}": chunk \\d+`));
}

/**
 * Each way a body's tail can go while it is read: the message deleted, or its chunk rows from a
 * `seq` on (all past the first page; the last page only) removed by `cutFrom`.
 */
async function assertEachCutFails(
  store: QueueStore,
  cutFrom: (id: string, seq: number) => Promise<void>,
): Promise<void> {
  const damages = [
    ["the message deleted", (id: string) => store.delete([id]).then(() => {})],
    ["the chunks past the first page gone", (id: string) => cutFrom(id, 16)],
    ["the last page gone", (id: string) => cutFrom(id, 32)],
  ] as const;
  for (const [what, damage] of damages) {
    const id = await queueMessage(store, { to: ["a@example.org"], body: BODY });
    assertNotWhole(await readAcross(store, id, () => damage(id)), id, what);
  }
}

Deno.test("SQLite: a chunked body whose message is deleted while it is read ends in an error (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir), {
      bodyFiles: false,
      chunkBytes: CHUNK,
    });
    try {
      await assertEachCutFails(store, (id, seq) => {
        const raw = openDatabase(dataDir);
        try {
          raw.prepare("DELETE FROM message_chunks WHERE message_id = ? AND seq >= ?").run(id, seq);
        } finally {
          raw.close();
        }
        return Promise.resolve();
      });
    } finally {
      await store.close();
    }
  });
});

await postgresTest(
  "PostgreSQL: a chunked body whose message is deleted while it is read ends in an error (#13)",
  async (pg) => {
    const url = await pg.createDatabase("body_tail");
    const store = await PgQueueStore.open({ url }, { nodeId: "node-a", chunkBytes: CHUNK });
    const raw = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await assertEachCutFails(store, async (id, seq) => {
        await raw`DELETE FROM message_chunks WHERE message_id = ${id} AND seq >= ${seq}`;
      });
    } finally {
      await raw.end({ timeout: 1 });
      await store.close();
    }
  },
);
