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
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { Lease } from "../../src/queue/types.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import {
  bodyNameOf,
  delivered,
  eventually,
  failOnceSync,
  filledBodyFiles,
  maintenanceOptions,
  patternBytes,
  queueMessage,
  rcpt,
  segmentOf,
  withStore,
} from "../_helpers/queue_fixtures.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

const BIG = 100 * 1024;

function query(dataDir: string, sql: string, ...args: string[]): Record<string, unknown>[] {
  const raw = new DatabaseSync(`${dataDir}/odmr.db`);
  try {
    return raw.prepare(sql).all(...args) as Record<string, unknown>[];
  } finally {
    raw.close();
  }
}

/** Each body in a segment file of its own: it takes no more once it holds any. */
const ONE_PER_FILE = { segmentBytes: 1 } as const;

function chunkRows(dataDir: string): number {
  return Number(query(dataDir, "SELECT count(*) AS n FROM message_chunks")[0]?.n);
}

function messageRows(dataDir: string): number {
  return Number(query(dataDir, "SELECT count(*) AS n FROM messages")[0]?.n);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
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
    const big = patternBytes(BIG + 5, 1);
    const id = await queueMessage(store, { to: ["a@one.test"], body: big });
    const small = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(4096, 2) });
    const name = segmentOf(dataDir, id);
    assert.deepEqual(filledBodyFiles(dataDir), [name]);
    assert.equal((await Deno.stat(`${dataDir}/${BODY_DIR}/${name}`)).size, big.length);
    assert.equal(chunkRows(dataDir), 0, "nothing of the body in SQLite");
    assert.equal(bodyNameOf(dataDir, small), null);
    assert.deepEqual(await collectBytes(store.readBody(id)), big);
    assert.equal((await collectBytes(store.readBody(small))).length, 4096);
    assert.equal((await store.get(id))?.size, big.length);
  }, { bodyFiles: ONE_PER_FILE });
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
    const committed = queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 3) });
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
  const { sync } = failOnceSync(true);
  await withStore(async (store, dataDir) => {
    await assert.rejects(
      queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 4) }),
      /EIO \(test\)/,
    );
    assert.equal(messageRows(dataDir), 0);
    assert.deepEqual(filledBodyFiles(dataDir), [], "the written file was removed");
    // Only that message: the next one is stored.
    const id = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 5) });
    assert.deepEqual(await collectBytes(store.readBody(id)), patternBytes(BIG, 5));
  }, { bodyFiles: { ...ONE_PER_FILE, sync } });
});

Deno.test("a failed sync of the body folder is final for bodies in files; short ones still go (#13)", async () => {
  let folderSyncs = 0;
  const sync: BodySync = async (what, run) => {
    if (what === "folder" && folderSyncs++ === 0) throw new Error("EIO (test)");
    await run();
  };
  await withStore(async (store, dataDir) => {
    const big = { to: ["a@one.test"], body: patternBytes(BIG, 6) };
    await assert.rejects(queueMessage(store, big), /body folder/);
    // A later sync might succeed on an entry never written: no file is trusted any more.
    await assert.rejects(queueMessage(store, big), /body folder/);
    assert.equal(folderSyncs, 1);
    assert.equal(messageRows(dataDir), 0);
    const small = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(100, 7) });
    assert.equal((await collectBytes(store.readBody(small))).length, 100);
  }, { bodyFiles: { ...ONE_PER_FILE, sync } });
});

Deno.test("a crash while a body is written leaves no message; its file goes at the next start (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const first = new SqliteQueueStore(openDatabase(dataDir), { bodyFiles: ONE_PER_FILE });
    const kept = await queueMessage(first, { to: ["a@one.test"], body: patternBytes(BIG, 8) });
    const crashed = await first.begin({
      mailFrom: "",
      params: {},
      recipients: [rcpt("b@one.test")],
    });
    await crashed.write(patternBytes(BIG, 9)); // in its file, never committed
    await first.close();
    // A file nobody names, as a crash after the spares' folder sync would leave one too.
    await Deno.writeFile(`${dataDir}/${BODY_DIR}/01JQ0000000000000000`, new Uint8Array(10));
    assert.equal(filledBodyFiles(dataDir).length, 3);
    assert.equal(messageRows(dataDir), 1);

    const cli = new SqliteQueueStore(openDatabase(dataDir), { removeOrphans: false });
    await cli.close();
    assert.equal(filledBodyFiles(dataDir).length, 3, "removeOrphans: false keeps them");

    const second = new SqliteQueueStore(openDatabase(dataDir));
    try {
      assert.deepEqual(filledBodyFiles(dataDir), [segmentOf(dataDir, kept)]);
      assert.deepEqual((await second.list()).map((m) => m.id), [kept]);
      assert.deepEqual(await collectBytes(second.readBody(kept)), patternBytes(BIG, 8));
    } finally {
      await second.close();
    }
  });
});

Deno.test("a body whose file is missing or short is an error, never an empty or cut body (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const gone = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 10) });
    const short = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 11) });
    await Deno.remove(`${dataDir}/${BODY_DIR}/${segmentOf(dataDir, gone)}`);
    await Deno.truncate(`${dataDir}/${BODY_DIR}/${segmentOf(dataDir, short)}`, BIG - 1);
    await assert.rejects(collectBytes(store.readBody(gone)), /Cannot read body of message/);
    await assert.rejects(collectBytes(store.readBody(short)), /holds 102399 bytes, not 102400/);
  }, { bodyFiles: ONE_PER_FILE });
});

Deno.test("a deleted or delivered message's file goes once the deletion is on disk (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const deleted = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 12) });
    const sent = await queueMessage(store, { to: ["b@two.test"], body: patternBytes(BIG, 13) });
    const kept = await queueMessage(store, { to: ["c@three.test"], body: patternBytes(BIG, 14) });
    const files = [deleted, sent, kept].map((id) => segmentOf(dataDir, id));
    assert.equal(await store.delete([deleted]), 1);
    const lease = leaseOf(await store.claim(["two.test"], { owner: "s", leaseSeconds: 60 }));
    for await (const m of lease.messages()) {
      for (const r of m.recipients) {
        await lease.settle([delivered(m.id, r.id)]);
      }
    }
    await lease.release();
    // Not yet: the settlement was not synced, and a power failure could bring its row back.
    assert.equal(filledBodyFiles(dataDir).length, 3);
    await store.maintain(maintenanceOptions());
    await eventually(() => filledBodyFiles(dataDir).length <= 1);
    assert.deepEqual(filledBodyFiles(dataDir), [files[2]]);
    assert.deepEqual(await collectBytes(store.readBody(kept)), patternBytes(BIG, 14));
  }, { bodyFiles: ONE_PER_FILE });
});

Deno.test("a queue of before step 8 (bodies in message_chunks) is read, drained and deleted (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const old = new SqliteQueueStore(openDatabase(dataDir), { bodyFiles: false });
    const a = await queueMessage(old, { to: ["a@one.test"], body: patternBytes(BIG, 15) });
    const b = await queueMessage(old, { to: ["b@two.test"], body: patternBytes(BIG, 16) });
    await old.close();
    assert.equal(chunkRows(dataDir), 4);

    const store = new SqliteQueueStore(openDatabase(dataDir), { bodyFiles: ONE_PER_FILE });
    try {
      const c = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 17) });
      assert.notEqual(bodyNameOf(dataDir, c), null);
      assert.equal(bodyNameOf(dataDir, a), null);
      assert.deepEqual(await collectBytes(store.readBody(a)), patternBytes(BIG, 15));
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
          await lease.settle([delivered(m.id, r.id)]);
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
    assert.deepEqual(filledBodyFiles(dataDir), [], "c's file went at close");
  });
});

Deno.test("another process reads bodies in files but keeps the bodies it writes in SQLite (#13)", async () => {
  await withStore(async (serve, dataDir) => {
    const id = await queueMessage(serve, { to: ["a@one.test"], body: patternBytes(BIG, 18) });
    const cli = new SqliteQueueStore(openDatabase(dataDir), { removeOrphans: false });
    try {
      assert.deepEqual(await collectBytes(cli.readBody(id)), patternBytes(BIG, 18));
      const own = await queueMessage(cli, { to: ["a@one.test"], body: patternBytes(BIG, 19) });
      assert.equal(bodyNameOf(dataDir, own), null);
      assert.equal(chunkRows(dataDir), 2);
      assert.ok(exists(`${dataDir}/${BODY_DIR}/${segmentOf(dataDir, id)}`));
    } finally {
      await cli.close();
    }
    assert.ok(exists(`${dataDir}/${BODY_DIR}/${segmentOf(dataDir, id)}`));
  }, { bodyFiles: ONE_PER_FILE });
});

Deno.test("the folder's own entry is synced once, before the first file is handed out (#13)", async () => {
  const calls: string[] = [];
  const sync: BodySync = async (what, run) => {
    calls.push(what);
    await run();
  };
  await withStore(async (store) => {
    await queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 20) });
    // On the first start after the upgrade `bodies/` is new: its name in the data directory
    // must be on disk before a row names a file in it.
    assert.deepEqual(calls.slice(0, 3), ["parent", "folder", "data"]);
    for (let i = 0; i < 20; i++) {
      await queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, i) });
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
      body: patternBytes(BIG, 21),
    });
    const b = await queueMessage(store, { to: ["y@two.test"], body: patternBytes(BIG, 22) });
    const fileB = segmentOf(dataDir, b);
    await Deno.remove(`${dataDir}/${BODY_DIR}/${segmentOf(dataDir, a)}`);
    assert.equal(await store.delete([b]), 1);
    now += 40 * 86_400_000;
    const opts = maintenanceOptions({ isLocalDomain: (d) => d === "local.test" });
    for (let pass = 0; pass < 2; pass++) {
      const report = await store.maintain(opts);
      if (pass === 0) assert.deepEqual([report.expiredRecipients, report.dsnQueued], [1, 1]);
    }
    assert.equal((await store.get(a))?.recipients[0]?.status, "expired");
    await eventually(() => !filledBodyFiles(dataDir).includes(fileB));
    assert.ok(!filledBodyFiles(dataDir).includes(fileB), "b's file went");
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
      queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 23) }),
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
      await assert.rejects(
        queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 24) }),
      );
      inject = false;
      assert.deepEqual(await store.list(), []);
      assert.deepEqual(
        filledBodyFiles(dataDir),
        [],
        "no file without its row, not even until restart",
      );
    } finally {
      await store.close();
    }
  });
});
