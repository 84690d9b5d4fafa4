import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../../src/queue/db.ts";
import { isQueueId } from "../../src/queue/id.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { NewMessage } from "../../src/queue/types.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { withStore } from "../_helpers/queue_fixtures.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

const MESSAGE: NewMessage = {
  mailFrom: "sender@example.net",
  params: { body: "8BITMIME" },
  recipients: [
    { address: "a@example.org", domain: "example.org" },
    { address: "b@example.com", domain: "example.com", notify: "FAILURE", orcpt: "rfc822;b@x" },
  ],
};

/** Bodies in the message row and its chunk rows, which these tests count: no body files. */
const IN_SQLITE = { bodyFiles: false } as const;

/** Random bytes of any length (getRandomValues gives at most 64 KiB per call). */
function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let at = 0; at < length; at += 65536) {
    crypto.getRandomValues(out.subarray(at, Math.min(at + 65536, length)));
  }
  return out;
}

function countRows(dataDir: string, table: string): number {
  const db = new DatabaseSync(`${dataDir}/odmr.db`);
  try {
    const row = db.prepare(`SELECT count(*) AS n FROM ${table}`).get();
    return Number(row?.n);
  } finally {
    db.close();
  }
}

Deno.test("SqliteQueueStore.newId() gives unique, time-sortable ids of 12+ alphanumerics", async () => {
  let t = 1_700_000_000_000;
  const db = new DatabaseSync(":memory:");
  const store = new SqliteQueueStore(db, { now: () => t });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      ids.push(await store.newId());
      t += 1;
    }
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    for (const id of ids) assert.ok(isQueueId(id) && id.length >= 12, id);
  } finally {
    await store.close();
  }
});

Deno.test("SqliteQueueStore stores a multi-chunk binary body byte-exact", async () => {
  await withStore(async (store, dataDir) => {
    const body = randomBytes(210 * 1024 + 7);
    const writer = await store.begin(MESSAGE);
    // Uneven pieces, and a reused buffer: the writer must copy what it keeps.
    const scratch = new Uint8Array(10_000);
    for (let at = 0; at < body.length; at += 10_000) {
      const piece = body.subarray(at, Math.min(at + 10_000, body.length));
      scratch.set(piece);
      await writer.write(scratch.subarray(0, piece.length));
      scratch.fill(0);
    }
    await writer.commit();
    assert.deepEqual(await collectBytes(store.readBody(writer.id)), body);
    assert.equal(countRows(dataDir, "message_chunks"), 4); // 3 × 64 KiB + the rest
    const got = await store.get(writer.id);
    assert.ok(got);
    assert.equal(got.size, body.length);
    assert.equal(got.mailFrom, "sender@example.net");
    assert.deepEqual(got.params, { body: "8BITMIME" });
    assert.deepEqual(
      got.recipients.map((r) => ({ ...r, id: 0 })),
      [
        {
          id: 0,
          address: "a@example.org",
          domain: "example.org",
          status: "queued",
          attempts: 0,
          route: "atrn",
        },
        {
          id: 0,
          address: "b@example.com",
          domain: "example.com",
          status: "queued",
          attempts: 0,
          notify: "FAILURE",
          orcpt: "rfc822;b@x",
          route: "atrn",
        },
      ],
    );
  }, IN_SQLITE);
});

Deno.test("SqliteQueueStore chunk rows are exactly chunkBytes at N and spill at N+1", async (t) => {
  for (
    const { size, want, inRow, why } of [
      { size: 0, want: 0, inRow: false, why: "an empty body stores nothing" },
      { size: 1, want: 0, inRow: true, why: "shorter than a chunk: in the message's row (#13)" },
      { size: 15, want: 0, inRow: true, why: "one byte short of a chunk: in the row (#13)" },
      { size: 16, want: 1, inRow: false, why: "exactly one chunk" },
      { size: 17, want: 2, inRow: false, why: "one byte more spills into a second chunk" },
      { size: 40, want: 3, inRow: false, why: "chunks, the last one short" },
    ]
  ) {
    await t.step(`${size} bytes → ${want} rows (${why})`, async () => {
      await withStore(async (store, dataDir) => {
        const body = randomBytes(size);
        const writer = await store.begin(MESSAGE);
        // In pieces, as bytes arrive from a socket.
        for (let at = 0; at < size; at += 7) await writer.write(body.subarray(at, at + 7));
        await writer.commit();
        assert.equal(countRows(dataDir, "message_chunks"), want);
        assert.equal(bodyInRow(dataDir, writer.id)?.length, inRow ? size : undefined);
        assert.deepEqual(await collectBytes(store.readBody(writer.id)), body);
        assert.equal((await store.get(writer.id))?.size, size);
      }, { ...IN_SQLITE, chunkBytes: 16 });
    });
  }
});

/** The `body` column of a message's row, read on a connection of its own. */
function bodyInRow(dataDir: string, id: string): Uint8Array | undefined {
  const raw = new DatabaseSync(`${dataDir}/odmr.db`);
  try {
    const body: unknown = raw.prepare("SELECT body FROM messages WHERE id = ?").get(id)?.body;
    return body instanceof Uint8Array ? body : undefined;
  } finally {
    raw.close();
  }
}

Deno.test("MessageWriter.abort() leaves no rows behind", async () => {
  await withStore(async (store, dataDir) => {
    const writer = await store.begin(MESSAGE);
    await writer.write(new Uint8Array(100));
    await writer.abort();
    const other = await store.begin(MESSAGE); // a commit flushes the shared transaction
    await other.write(new Uint8Array(20));
    await other.commit();
    assert.equal(countRows(dataDir, "message_chunks"), 2);
    assert.equal(await store.get(writer.id), undefined);
    assert.deepEqual((await store.list()).map((m) => m.id), [other.id]);
  }, { ...IN_SQLITE, chunkBytes: 16 });
});

Deno.test("SqliteQueueStore removes orphan chunks of a crashed receipt on open", async () => {
  await withTempDataDir(async (dataDir) => {
    const first = new SqliteQueueStore(openDatabase(dataDir), {
      chunkBytes: 16,
      bodyFiles: false,
    });
    const kept = await first.begin(MESSAGE);
    await kept.write(new Uint8Array(40));
    await kept.commit();
    const crashed = await first.begin(MESSAGE);
    await crashed.write(new Uint8Array(40)); // two full chunks written, never committed
    await first.close(); // close commits the shared transaction, as a crash after a group COMMIT would
    assert.equal(countRows(dataDir, "message_chunks"), 5);

    const cli = new SqliteQueueStore(openDatabase(dataDir), { removeOrphans: false });
    await cli.close();
    assert.equal(countRows(dataDir, "message_chunks"), 5, "removeOrphans: false keeps them");

    const second = new SqliteQueueStore(openDatabase(dataDir));
    try {
      assert.equal(countRows(dataDir, "message_chunks"), 3);
      assert.equal((await collectBytes(second.readBody(kept.id))).length, 40);
    } finally {
      await second.close();
    }
  });
});

Deno.test("concurrent commits share one COMMIT and resolve only once durable", async () => {
  let commits = 0;
  await withStore(async (store, dataDir) => {
    const observer = new DatabaseSync(`${dataDir}/odmr.db`);
    try {
      const writers = await Promise.all(Array.from({ length: 20 }, () => store.begin(MESSAGE)));
      for (const w of writers) {
        await w.write(new TextEncoder().encode(`Subject: ${w.id}\r\n\r\nhi\r\n`));
      }
      const isVisible = (id: string) =>
        observer.prepare("SELECT 1 AS ok FROM messages WHERE id = ?").get(id) !== undefined;
      for (const w of writers) assert.equal(isVisible(w.id), false);
      // The 250 after DATA waits for this promise: it must not resolve before another
      // connection can see the message.
      const seen = await Promise.all(writers.map((w) => w.commit().then(() => isVisible(w.id))));
      assert.deepEqual(seen, writers.map(() => true));
      assert.equal(commits, 1);
    } finally {
      observer.close();
    }
  }, { onGroupCommit: () => commits++ });
});

Deno.test("MessageWriter.commit() rejects when its message cannot be stored", async () => {
  await withStore(async (store) => {
    const first = await store.begin({ ...MESSAGE, id: "DUPLICATEID0001" });
    await first.write(new Uint8Array([1, 2, 3]));
    await first.commit();
    const second = await store.begin({ ...MESSAGE, id: "DUPLICATEID0001" });
    await second.write(new Uint8Array([4]));
    await assert.rejects(second.commit());
    assert.deepEqual(
      await collectBytes(store.readBody("DUPLICATEID0001")),
      new Uint8Array([1, 2, 3]),
    );
  }, IN_SQLITE);
});

Deno.test("SqliteQueueStore skips and logs a message row with unreadable params", async () => {
  const events: string[] = [];
  const logger = {
    debug() {},
    info() {},
    warn(event: string) {
      events.push(event);
    },
    error() {},
    with() {
      return logger;
    },
  };
  await withStore(async (store, dataDir) => {
    const good = await store.begin(MESSAGE);
    await good.commit();
    const bad = await store.begin(MESSAGE);
    await bad.commit();
    const raw = new DatabaseSync(`${dataDir}/odmr.db`);
    raw.prepare("UPDATE messages SET params = '{not json' WHERE id = ?").run(bad.id);
    raw.close();
    assert.deepEqual((await store.list()).map((m) => m.id), [good.id]);
    assert.equal(await store.get(bad.id), undefined);
    assert.ok(events.includes("queue_row_unreadable"));
  }, { logger });
});

Deno.test("tempInMemory keeps SQLite's temporary files in memory; tools keep the default (#13)", async () => {
  for (const [opts, want] of [[{ tempInMemory: true }, 2], [{}, 0]] as const) {
    await withStore((_store, _dataDir, db) => {
      assert.equal(db.prepare("PRAGMA temp_store").get()?.temp_store, want);
    }, opts);
  }
});
