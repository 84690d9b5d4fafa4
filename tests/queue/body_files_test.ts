/**
 * Schema steps 8 and 9 (issue 13): a body of a chunk or more is kept in a file under
 * `data_dir/bodies/`, and its message row is written only once that file is on disk. A crash at
 * any moment leaves either the message whole or no message (a file nobody names, removed at the
 * next start); a deleted message's file goes once the deletion is on disk; queues written before
 * the step (bodies in `message_chunks`) keep working. Most tests here give each body a segment
 * of its own (`ONE_PER_FILE`); body_segments_test.ts has the bodies that share one.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { setImmediate } from "node:timers";
import { openDatabase } from "../../src/queue/db.ts";
import { BODY_DIR, type BodySync } from "../../src/queue/_body_files.ts";
import { SqliteQueueStore, type SqliteQueueStoreOptions } from "../../src/queue/sqlite_store.ts";
import type { Lease } from "../../src/queue/types.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { maintenanceOptions, queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

const BIG = 100 * 1024;

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed + (i >> 10)) & 0xff);
}

function query(dataDir: string, sql: string, ...args: string[]): Record<string, unknown>[] {
  const raw = new DatabaseSync(`${dataDir}/odmr.db`);
  try {
    return raw.prepare(sql).all(...args) as Record<string, unknown>[];
  } finally {
    raw.close();
  }
}

/** The file holding the body of message `id` (its row's `body_file` up to "@"). */
function bodyFileOf(dataDir: string, id: string): unknown {
  const name = query(dataDir, "SELECT body_file FROM messages WHERE id = ?", id)[0]?.body_file;
  return typeof name === "string" ? name.split("@")[0] : name;
}

/** Each body in a segment file of its own: it takes no more once it holds any. */
const ONE_PER_FILE = { segmentBytes: 1 } as const;

function chunkRows(dataDir: string): number {
  return Number(query(dataDir, "SELECT count(*) AS n FROM message_chunks")[0]?.n);
}

function messageRows(dataDir: string): number {
  return Number(query(dataDir, "SELECT count(*) AS n FROM messages")[0]?.n);
}

/** The files in the body folder that hold bytes (spares are empty). */
function filledFiles(dataDir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${dataDir}/${BODY_DIR}`)) {
    try {
      if (Deno.statSync(`${dataDir}/${BODY_DIR}/${e.name}`).size > 0) out.push(e.name);
    } catch (err) {
      // Unlinked (off the loop) between the listing and the stat: gone.
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return out.sort();
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function withStore(
  fn: (store: SqliteQueueStore, dataDir: string) => Promise<void>,
  opts: SqliteQueueStoreOptions = { bodyFiles: ONE_PER_FILE },
): Promise<void> {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir), opts);
    try {
      await fn(store, dataDir);
    } finally {
      await store.close();
    }
  });
}

/** A promise and the functions that settle it. */
function gate(): { promise: Promise<void>; open: () => void; fail: (e: Error) => void } {
  let open = () => {};
  let fail = (_: Error) => {};
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

function leaseOf(result: Awaited<ReturnType<SqliteQueueStore["claim"]>>): Lease {
  if (result.kind !== "claimed") throw new Error(`claim was ${result.kind}`);
  return result.lease;
}

Deno.test("a body of 64 KiB or more is in a file of its own, a shorter one in its row (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const big = bytes(BIG + 5, 1);
    const id = await queueMessage(store, { to: ["a@one.test"], body: big });
    const small = await queueMessage(store, { to: ["a@one.test"], body: bytes(4096, 2) });
    const name = bodyFileOf(dataDir, id);
    assert.equal(typeof name, "string");
    assert.deepEqual(filledFiles(dataDir), [name]);
    assert.equal((await Deno.stat(`${dataDir}/${BODY_DIR}/${name}`)).size, big.length);
    assert.equal(chunkRows(dataDir), 0, "nothing of the body in SQLite");
    assert.equal(bodyFileOf(dataDir, small), null);
    assert.deepEqual(await collectBytes(store.readBody(id)), big);
    assert.equal((await collectBytes(store.readBody(small))).length, 4096);
    assert.equal((await store.get(id))?.size, big.length);
  });
});

Deno.test("the message row is written only once its body's file is on disk (#13)", async () => {
  const held = gate();
  const started = gate();
  const sync: BodySync = async (what, run) => {
    if (what === "data") {
      started.open();
      await held.promise;
    }
    await run();
  };
  await withStore(async (store, dataDir) => {
    const committed = queueMessage(store, { to: ["a@one.test"], body: bytes(BIG, 3) });
    await started.promise;
    // The file's sync has begun and not ended: no row may name the file yet, on disk or not.
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(messageRows(dataDir), 0);
    assert.deepEqual(await store.list(), []);
    held.open();
    const id = await committed;
    assert.equal(messageRows(dataDir), 1);
    assert.equal((await collectBytes(store.readBody(id))).length, BIG);
  }, { bodyFiles: { ...ONE_PER_FILE, sync } });
});

Deno.test("a failed sync of a body's file refuses that message: no row, no file (#13)", async () => {
  let failNext = true;
  const sync: BodySync = async (what, run) => {
    if (what === "data" && failNext) {
      failNext = false;
      throw new Error("EIO (test)");
    }
    await run();
  };
  await withStore(async (store, dataDir) => {
    await assert.rejects(
      queueMessage(store, { to: ["a@one.test"], body: bytes(BIG, 4) }),
      /EIO \(test\)/,
    );
    assert.equal(messageRows(dataDir), 0);
    assert.deepEqual(filledFiles(dataDir), [], "the written file was removed");
    // Only that message: the next one is stored.
    const id = await queueMessage(store, { to: ["a@one.test"], body: bytes(BIG, 5) });
    assert.deepEqual(await collectBytes(store.readBody(id)), bytes(BIG, 5));
  }, { bodyFiles: { ...ONE_PER_FILE, sync } });
});

Deno.test("a failed sync of the body folder is final for bodies in files; short ones still go (#13)", async () => {
  let folderSyncs = 0;
  const sync: BodySync = async (what, run) => {
    if (what === "folder" && folderSyncs++ === 0) throw new Error("EIO (test)");
    await run();
  };
  await withStore(async (store, dataDir) => {
    const big = { to: ["a@one.test"], body: bytes(BIG, 6) };
    await assert.rejects(queueMessage(store, big), /body folder/);
    // A later sync might succeed on an entry never written: no file is trusted any more.
    await assert.rejects(queueMessage(store, big), /body folder/);
    assert.equal(folderSyncs, 1);
    assert.equal(messageRows(dataDir), 0);
    const small = await queueMessage(store, { to: ["a@one.test"], body: bytes(100, 7) });
    assert.equal((await collectBytes(store.readBody(small))).length, 100);
  }, { bodyFiles: { ...ONE_PER_FILE, sync } });
});

Deno.test("a crash while a body is written leaves no message; its file goes at the next start (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const first = new SqliteQueueStore(openDatabase(dataDir), { bodyFiles: ONE_PER_FILE });
    const kept = await queueMessage(first, { to: ["a@one.test"], body: bytes(BIG, 8) });
    const crashed = await first.begin({
      mailFrom: "",
      params: {},
      recipients: [rcpt("b@one.test")],
    });
    await crashed.write(bytes(BIG, 9)); // in its file, never committed
    await first.close();
    // A file nobody names, as a crash after the spares' folder sync would leave one too.
    await Deno.writeFile(`${dataDir}/${BODY_DIR}/01JQ0000000000000000`, new Uint8Array(10));
    assert.equal(filledFiles(dataDir).length, 3);
    assert.equal(messageRows(dataDir), 1);

    const cli = new SqliteQueueStore(openDatabase(dataDir), { removeOrphans: false });
    await cli.close();
    assert.equal(filledFiles(dataDir).length, 3, "removeOrphans: false keeps them");

    const second = new SqliteQueueStore(openDatabase(dataDir));
    try {
      assert.deepEqual(filledFiles(dataDir), [bodyFileOf(dataDir, kept)]);
      assert.deepEqual((await second.list()).map((m) => m.id), [kept]);
      assert.deepEqual(await collectBytes(second.readBody(kept)), bytes(BIG, 8));
    } finally {
      await second.close();
    }
  });
});

Deno.test("a body whose file is missing or short is an error, never an empty or cut body (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const gone = await queueMessage(store, { to: ["a@one.test"], body: bytes(BIG, 10) });
    const short = await queueMessage(store, { to: ["a@one.test"], body: bytes(BIG, 11) });
    await Deno.remove(`${dataDir}/${BODY_DIR}/${bodyFileOf(dataDir, gone)}`);
    await Deno.truncate(`${dataDir}/${BODY_DIR}/${bodyFileOf(dataDir, short)}`, BIG - 1);
    await assert.rejects(collectBytes(store.readBody(gone)), /Cannot read body of message/);
    await assert.rejects(collectBytes(store.readBody(short)), /holds 102399 bytes, not 102400/);
  });
});

Deno.test("a deleted or delivered message's file goes once the deletion is on disk (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const deleted = await queueMessage(store, { to: ["a@one.test"], body: bytes(BIG, 12) });
    const delivered = await queueMessage(store, { to: ["b@two.test"], body: bytes(BIG, 13) });
    const kept = await queueMessage(store, { to: ["c@three.test"], body: bytes(BIG, 14) });
    const files = [deleted, delivered, kept].map((id) => bodyFileOf(dataDir, id));
    assert.equal(await store.delete([deleted]), 1);
    const lease = leaseOf(await store.claim(["two.test"], { owner: "s", leaseSeconds: 60 }));
    for await (const m of lease.messages()) {
      for (const r of m.recipients) {
        await lease.settle([{ recipientId: r.id, outcome: "delivered", reply: "250 ok" }]);
      }
    }
    await lease.release();
    // Not yet: the settlement was not synced, and a power failure could bring its row back.
    assert.equal(filledFiles(dataDir).length, 3);
    await store.maintain(maintenanceOptions());
    for (let i = 0; i < 100 && filledFiles(dataDir).length > 1; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(filledFiles(dataDir), [files[2]]);
    assert.deepEqual(await collectBytes(store.readBody(kept)), bytes(BIG, 14));
  });
});

Deno.test("a queue of before step 8 (bodies in message_chunks) is read, drained and deleted (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const old = new SqliteQueueStore(openDatabase(dataDir), { bodyFiles: false });
    const a = await queueMessage(old, { to: ["a@one.test"], body: bytes(BIG, 15) });
    const b = await queueMessage(old, { to: ["b@two.test"], body: bytes(BIG, 16) });
    await old.close();
    assert.equal(chunkRows(dataDir), 4);

    const store = new SqliteQueueStore(openDatabase(dataDir), { bodyFiles: ONE_PER_FILE });
    try {
      const c = await queueMessage(store, { to: ["a@one.test"], body: bytes(BIG, 17) });
      assert.equal(typeof bodyFileOf(dataDir, c), "string");
      assert.equal(bodyFileOf(dataDir, a), null);
      assert.deepEqual(await collectBytes(store.readBody(a)), bytes(BIG, 15));
      const lease = leaseOf(await store.claim(["one.test"], { owner: "s", leaseSeconds: 60 }));
      const seen: string[] = [];
      for await (const m of lease.messages()) {
        seen.push(m.id);
        const body = await collectBytes(
          (async function* () {
            yield* lease.readBody(m.id);
          })(),
        );
        assert.equal(body.length, BIG);
        for (const r of m.recipients) {
          await lease.settle([{ recipientId: r.id, outcome: "delivered", reply: "250 ok" }]);
        }
      }
      await lease.release();
      assert.deepEqual(seen, [a, c]);
      assert.equal(chunkRows(dataDir), 2, "a's chunks went with it, b's stay");
      assert.equal(await store.delete([b]), 1);
      assert.equal(chunkRows(dataDir), 0);
    } finally {
      await store.close();
    }
    assert.deepEqual(filledFiles(dataDir), [], "c's file went at close");
  });
});

Deno.test("another process reads bodies in files but keeps the bodies it writes in SQLite (#13)", async () => {
  await withStore(async (serve, dataDir) => {
    const id = await queueMessage(serve, { to: ["a@one.test"], body: bytes(BIG, 18) });
    const cli = new SqliteQueueStore(openDatabase(dataDir), { removeOrphans: false });
    try {
      assert.deepEqual(await collectBytes(cli.readBody(id)), bytes(BIG, 18));
      const own = await queueMessage(cli, { to: ["a@one.test"], body: bytes(BIG, 19) });
      assert.equal(bodyFileOf(dataDir, own), null);
      assert.equal(chunkRows(dataDir), 2);
      assert.ok(exists(`${dataDir}/${BODY_DIR}/${bodyFileOf(dataDir, id)}`));
    } finally {
      await cli.close();
    }
    assert.ok(exists(`${dataDir}/${BODY_DIR}/${bodyFileOf(dataDir, id)}`));
  });
});

Deno.test("the folder's own entry is synced once, before the first file is handed out (#13)", async () => {
  const calls: string[] = [];
  const sync: BodySync = async (what, run) => {
    calls.push(what);
    await run();
  };
  await withStore(async (store) => {
    await queueMessage(store, { to: ["a@one.test"], body: bytes(BIG, 20) });
    // On the first start after the upgrade `bodies/` is new: its name in the data directory
    // must be on disk before a row names a file in it.
    assert.deepEqual(calls.slice(0, 3), ["parent", "folder", "data"]);
    for (let i = 0; i < 20; i++) {
      await queueMessage(store, { to: ["a@one.test"], body: bytes(BIG, i) });
    }
    assert.equal(calls.filter((w) => w === "parent").length, 1);
    assert.ok(calls.filter((w) => w === "folder").length >= 2, "spares made again");
  }, { bodyFiles: { ...ONE_PER_FILE, sync } });
});

Deno.test("a body file lost does not stop maintenance: the report goes without it, others go on (#13)", async () => {
  let now = Date.now();
  await withStore(async (store, dataDir) => {
    const a = await queueMessage(store, {
      from: "s@local.test",
      to: ["x@one.test"],
      body: bytes(BIG, 21),
    });
    const b = await queueMessage(store, { to: ["y@two.test"], body: bytes(BIG, 22) });
    const fileB = bodyFileOf(dataDir, b);
    await Deno.remove(`${dataDir}/${BODY_DIR}/${bodyFileOf(dataDir, a)}`);
    assert.equal(await store.delete([b]), 1);
    now += 40 * 86_400_000;
    const opts = maintenanceOptions({ isLocalDomain: (d) => d === "local.test" });
    for (let pass = 0; pass < 2; pass++) {
      const report = await store.maintain(opts);
      if (pass === 0) assert.deepEqual([report.expiredRecipients, report.dsnQueued], [1, 1]);
    }
    assert.equal((await store.get(a))?.recipients[0]?.status, "expired");
    for (let i = 0; i < 100 && filledFiles(dataDir).includes(String(fileB)); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(!filledFiles(dataDir).includes(String(fileB)), "b's file went");
  }, { now: () => now, bodyFiles: ONE_PER_FILE });
});

Deno.test("after a failed sync of the body folder, ping() fails: /healthz says 503 (#13)", async () => {
  let failed = false;
  const sync: BodySync = async (what, run) => {
    if (what === "folder" && !failed) {
      failed = true;
      throw new Error("EIO (test)");
    }
    await run();
  };
  await withStore(async (store) => {
    await store.ping();
    await assert.rejects(
      queueMessage(store, { to: ["a@one.test"], body: bytes(BIG, 23) }),
      /body folder/,
    );
    await assert.rejects(store.ping(), /body folder/);
  }, { bodyFiles: { ...ONE_PER_FILE, sync } });
});

Deno.test("a message whose group COMMIT failed leaves no body file behind (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const db = openDatabase(dataDir);
    let inject = false;
    const sync: BodySync = async (what, run) => {
      await run();
      // Before the writer's own flush: a deferred foreign key violation in the shared
      // transaction makes its COMMIT fail (a stand-in for SQLITE_FULL or an I/O error).
      if (what === "data" && inject) setImmediate(() => db.exec("INSERT INTO temp.c VALUES (9)"));
    };
    const store = new SqliteQueueStore(db, { bodyFiles: { ...ONE_PER_FILE, sync } });
    db.exec(
      "CREATE TEMP TABLE p (id INTEGER PRIMARY KEY); " +
        "CREATE TEMP TABLE c (x INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)",
    );
    try {
      inject = true;
      await assert.rejects(queueMessage(store, { to: ["a@one.test"], body: bytes(BIG, 24) }));
      inject = false;
      assert.deepEqual(await store.list(), []);
      assert.deepEqual(filledFiles(dataDir), [], "no file without its row, not even until restart");
    } finally {
      await store.close();
    }
  });
});
