/**
 * Schema step 7 (issue 13): a body shorter than one chunk is kept in its message's row. The step
 * is applied by whichever process opens the file first, possibly a newer `queue` command while
 * a `serve` started before the step still runs: that serve keeps inserting messages and chunk
 * rows with the statements it prepared, and every body must stay readable, whole, and counted.
 */
import assert from "node:assert/strict";
import type { DatabaseSync } from "node:sqlite";
import { applyMigrations, openDatabase } from "../../src/queue/db.ts";
import { QUEUE_MIGRATIONS } from "../../src/queue/_schema.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

/** The schema version before the body column. */
const BEFORE_STEP_7 = 6;

/**
 * A serve of before step 7: it knows six steps and writes a message as that version's writer
 * did, body in `message_chunks`, with statements prepared once at start.
 */
class OldServe {
  readonly #db: DatabaseSync;
  readonly #chunk;
  readonly #message;
  readonly #recipient;

  constructor(dataDir: string) {
    this.#db = openDatabase(dataDir);
    applyMigrations(this.#db, "queue", QUEUE_MIGRATIONS.slice(0, BEFORE_STEP_7));
    this.#chunk = this.#db.prepare(
      "INSERT INTO message_chunks (message_id, seq, bytes) VALUES (?, ?, ?)",
    );
    this.#message = this.#db.prepare(
      "INSERT INTO messages (id, received_at, mail_from, size, params) VALUES (?, ?, ?, ?, ?)",
    );
    this.#recipient = this.#db.prepare(
      "INSERT INTO recipients (message_id, address, domain, notify, orcpt, route, " +
        "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
  }

  write(id: string, body: Uint8Array, chunkBytes: number): void {
    this.#db.exec("BEGIN IMMEDIATE");
    for (let seq = 0; seq * chunkBytes < body.length; seq++) {
      this.#chunk.run(id, seq, body.subarray(seq * chunkBytes, (seq + 1) * chunkBytes));
    }
    this.#message.run(id, Date.now(), "old@example.net", body.length, "{}");
    this.#recipient.run(id, "a@example.org", "example.org", null, null, "atrn", null);
    this.#db.exec("COMMIT");
  }

  close(): void {
    this.#db.close();
  }
}

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

Deno.test("a serve started before step 7 keeps queueing readable mail after a newer command applies it (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const old = new OldServe(dataDir);
    try {
      const before = bytes(100, 1);
      old.write("old-before-0000001", before, 64);
      // A newer `queue` command opens the file: it applies step 7 under the running serve.
      const tool = new SqliteQueueStore(openDatabase(dataDir), { removeOrphans: false });
      try {
        // The old serve's prepared statements still work (SQLite prepares them again).
        const short = bytes(10, 2);
        const long = bytes(150, 3);
        old.write("old-after-00000002", short, 64);
        old.write("old-after-00000003", long, 64);
        const mine = await queueMessage(tool, { to: ["b@example.org"], body: bytes(30, 4) });
        for (
          const [id, body] of [
            ["old-before-0000001", before],
            ["old-after-00000002", short],
            ["old-after-00000003", long],
            [mine, bytes(30, 4)],
          ] as const
        ) {
          assert.deepEqual(await collectBytes(tool.readBody(id)), body, id);
        }
        // The quota counter saw every message, whoever wrote it.
        assert.deepEqual(await tool.usage("example.org"), {
          messages: 4,
          bytes: 100 + 10 + 150 + 30,
        });
      } finally {
        await tool.close();
      }
    } finally {
      old.close();
    }
  });
});

Deno.test("a message row whose body column holds no bytes is an error, never an empty body (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir));
    try {
      const id = await queueMessage(store, { to: ["a@example.org"] });
      const raw = openDatabase(dataDir);
      try {
        raw.prepare("UPDATE messages SET body = 'text' WHERE id = ?").run(id);
      } finally {
        raw.close();
      }
      await assert.rejects(collectBytes(store.readBody(id)), /body is not bytes/);
    } finally {
      await store.close();
    }
  });
});
