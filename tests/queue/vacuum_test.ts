import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { DATABASE_FILE, ensureIncrementalVacuum, openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { fileBytes, withTempDataDir } from "../_helpers/temp_db.ts";
import { maintenanceOptions, queueMessage } from "../_helpers/queue_fixtures.ts";
import { WAL_KEEP_BYTES } from "../../src/queue/_wal_sync.ts";

const ROUNDS = 10;
const MESSAGES_PER_ROUND = 200;
// Under a chunk (64 KiB): the body goes in its message row, so its pages pass through the
// database file (longer ones go to segment files in data_dir/bodies, src/queue/_body_files.ts).
const MESSAGE_BYTES = 60 * 1024;

/**
 * The database file once a round is drained and maintained: measured 102400 bytes (its schema
 * and indexes) every round, where a round puts ~11.7 MiB of bodies through it. Without
 * incremental_vacuum the freed pages stay in the file (measured 12.5 MB, flat, as they are
 * reused): a bound of 1 MiB tells the two apart with a margin of 10× either way.
 */
const DRAINED_DB_BYTES = 1024 * 1024;

const OPTIONS = maintenanceOptions({ isLocalDomain: () => true });

Deno.test("the database file gives a drained round's space back and does not grow across 10 rounds", async () => {
  await withTempDataDir(async (dataDir) => {
    const path = `${dataDir}/${DATABASE_FILE}`;
    const store = new SqliteQueueStore(openDatabase(dataDir));
    const body = new Uint8Array(MESSAGE_BYTES);
    crypto.getRandomValues(body); // incompressible, like real attachments
    const sizes: number[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const writers = [];
        for (let i = 0; i < MESSAGES_PER_ROUND; i++) {
          const w = await store.begin({
            mailFrom: "s@far.test",
            params: {},
            recipients: [{ address: `u${i}@local.test`, domain: "local.test" }],
          });
          await w.write(body);
          writers.push(w.commit());
        }
        await Promise.all(writers);
        const claim = await store.claim(["local.test"], { owner: "drain", leaseSeconds: 60 });
        assert.equal(claim.kind, "claimed");
        if (claim.kind !== "claimed") return;
        const settled = (await Array.fromAsync(claim.lease.messages())).flatMap((m) =>
          m.recipients.map((r) => ({
            recipientId: r.id,
            messageId: m.id,
            outcome: "delivered" as const,
            reply: "250 2.0.0 OK",
          }))
        );
        assert.equal(settled.length, MESSAGES_PER_ROUND);
        await claim.lease.settle(settled);
        await claim.lease.release();
        // 200 × 60 KiB ≈ 3000 pages of 4 KiB: a couple of passes give them all back.
        for (let pass = 0; pass < 3; pass++) await store.maintain(OPTIONS);
        // The database file alone: the WAL's size after a round depends on when its last
        // checkpoint ran (bounded by WAL_KEEP_BYTES, checked below), not on what vacuum gave back.
        sizes.push(fileBytes(path));
      }
    } finally {
      await store.close();
    }
    const first = sizes[0] ?? 0;
    const last = sizes[ROUNDS - 1] ?? 0;
    if (Deno.env.get("VACUUM_TEST_VERBOSE")) {
      Deno.stderr.writeSync(new TextEncoder().encode(`db bytes: ${sizes.join(", ")}\n`));
    }
    assert.ok(
      sizes.every((n) => n <= DRAINED_DB_BYTES),
      `db bytes after a drain over ${DRAINED_DB_BYTES}: ${sizes.join(", ")}`,
    );
    assert.ok(last <= first * 1.5, `db bytes per round grow past 1.5×: ${sizes.join(", ")}`);
    assert.ok(fileBytes(`${path}-wal`) <= WAL_KEEP_BYTES, "the WAL keeps at most WAL_KEEP_BYTES");
  });
});

Deno.test("a maintenance checkpoint keeps the WAL's space for the next writes to overwrite (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const wal = `${dataDir}/${DATABASE_FILE}-wal`;
    const store = new SqliteQueueStore(openDatabase(dataDir));
    try {
      const fill = async (n: number) => {
        for (let i = 0; i < n; i++) {
          await queueMessage(store, { to: ["u@local.test"], body: new Uint8Array(16 * 1024) });
        }
      };
      await fill(20);
      const grown = fileBytes(wal);
      await store.maintain(OPTIONS);
      // Truncated, the next fdatasync would have to journal the file's new size as well.
      assert.equal(fileBytes(wal), grown, "the checkpoint left the WAL file as it was");
      await fill(5);
      assert.equal(fileBytes(wal), grown, "written again from its start, not grown");
    } finally {
      await store.close();
    }
  });
});

Deno.test("ensureIncrementalVacuum() converts a database made before the setting, once", async () => {
  await withTempDataDir((dataDir) => {
    const path = `${dataDir}/${DATABASE_FILE}`;
    const old = new DatabaseSync(path);
    old.exec("CREATE TABLE t (x)"); // auto_vacuum NONE, as files made before issue 7
    const mode = () => Number(old.prepare("PRAGMA auto_vacuum").get()?.auto_vacuum);
    try {
      assert.equal(mode(), 0);
      assert.equal(ensureIncrementalVacuum(old), true);
      assert.equal(mode(), 2);
      assert.equal(ensureIncrementalVacuum(old), false, "nothing to do the second time");
    } finally {
      old.close();
    }
  });
});
