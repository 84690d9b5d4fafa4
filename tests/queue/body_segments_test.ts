/**
 * Schema step 9 (issue 13): bodies of 64 KiB or more written one after the other share a segment
 * file (`<segment>@<offset>+<length>` in the row since step 10), so a message costs no inode of its
 * own. Each body reads
 * back exactly; bodies written at once go to different segments; a failed sync or a crash costs
 * no other body; a segment goes once no row names any of its bodies and no writer holds it, and
 * only the process that counted its bodies (serve) removes it. An older program refuses the
 * database. Rows of step 9 (`<segment>@<offset>`) survive the start and share their segment.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { applyMigrations, openDatabase } from "../../src/queue/db.ts";
import { QUEUE_MIGRATIONS } from "../../src/queue/_schema.ts";
import { BODY_DIR, BodyFiles, OPEN_SEGMENTS } from "../../src/queue/_body_files.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import {
  bodyNameOf,
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
/** The store's chunk: a body's bytes go to its file a chunk at a time. */
const CHUNK = 64 * 1024;

Deno.test("bodies written one after the other share a segment, each read back exactly (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const sizes = [BIG, 64 * 1024, BIG + 7, 300 * 1024];
    const ids: string[] = [];
    for (const [i, n] of sizes.entries()) {
      ids.push(await queueMessage(store, { to: ["a@one.test"], body: patternBytes(n, i) }));
    }
    const segment = segmentOf(dataDir, ids[0] ?? "");
    let offset = 0;
    for (const [i, id] of ids.entries()) {
      assert.equal(bodyNameOf(dataDir, id), `${segment}@${offset}+${sizes[i]}`);
      offset += sizes[i] ?? 0;
    }
    assert.deepEqual(filledBodyFiles(dataDir), [segment], "one file for all of them");
    for (const [i, id] of ids.entries()) {
      assert.deepEqual(await collectBytes(store.readBody(id)), patternBytes(sizes[i] ?? 0, i));
    }
  });
});

Deno.test("bodies written at the same time go to different segments (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const a = await store.begin({ mailFrom: "", params: {}, recipients: [rcpt("a@one.test")] });
    const b = await store.begin({ mailFrom: "", params: {}, recipients: [rcpt("b@one.test")] });
    for (let i = 0; i < 3; i++) {
      await a.write(patternBytes(BIG, 10 + i));
      await b.write(patternBytes(BIG, 20 + i));
    }
    await Promise.all([a.commit(), b.commit()]);
    assert.notEqual(segmentOf(dataDir, a.id), segmentOf(dataDir, b.id));
    const expected = (seed: number) =>
      new Uint8Array([0, 1, 2].flatMap((i) => [...patternBytes(BIG, seed + i)]));
    assert.deepEqual(await collectBytes(store.readBody(a.id)), expected(10));
    assert.deepEqual(await collectBytes(store.readBody(b.id)), expected(20));
  });
});

Deno.test("at most OPEN_SEGMENTS segments stay open for later bodies (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const writers = OPEN_SEGMENTS + 2;
    const batch = async (seed: number) => {
      const ws = [];
      for (let i = 0; i < writers; i++) {
        ws.push(
          await store.begin({ mailFrom: "", params: {}, recipients: [rcpt("a@one.test")] }),
        );
      }
      for (const [i, w] of ws.entries()) await w.write(patternBytes(BIG, seed + i));
      await Promise.all(ws.map((w) => w.commit()));
      return ws.map((w) => segmentOf(dataDir, w.id));
    };
    const first = new Set(await batch(0));
    assert.equal(first.size, writers, "one segment per body written at once");
    const second = await batch(100);
    const reused = second.filter((s) => first.has(s));
    assert.equal(reused.length, OPEN_SEGMENTS, "the others were closed when their body ended");
    assert.equal(filledBodyFiles(dataDir).length, writers + 2);
  });
});

Deno.test("a body dropped or refused costs no other body; a failed sync retires its segment (#13)", async () => {
  const { sync, arm: failNextSync } = failOnceSync();
  await withStore(async (store, dataDir) => {
    const first = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 1) });
    const dropped = await store.begin({
      mailFrom: "",
      params: {},
      recipients: [rcpt("a@one.test")],
    });
    await dropped.write(patternBytes(2 * CHUNK, 2)); // two whole chunks: both in the file
    await dropped.abort();
    const second = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 3) });
    // The dropped bytes stay where they are, named by no row; the next body goes after them.
    assert.equal(
      bodyNameOf(dataDir, second),
      `${segmentOf(dataDir, first)}@${BIG + 2 * CHUNK}+${BIG}`,
    );
    failNextSync();
    await assert.rejects(
      queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 4) }),
      /EIO \(test\)/,
    );
    const third = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 5) });
    assert.notEqual(segmentOf(dataDir, third), segmentOf(dataDir, first), "a new segment");
    assert.equal(bodyNameOf(dataDir, third), `${segmentOf(dataDir, third)}@0+${BIG}`);
    assert.deepEqual(await collectBytes(store.readBody(first)), patternBytes(BIG, 1));
    assert.deepEqual(await collectBytes(store.readBody(second)), patternBytes(BIG, 3));
    assert.deepEqual(await collectBytes(store.readBody(third)), patternBytes(BIG, 5));
    assert.equal((await store.list()).length, 3);
  }, { bodyFiles: { sync } });
});

Deno.test("a segment goes once none of its bodies is named, full or still open (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    // Full after its third body of 100 KB.
    const opts = { bodyFiles: { segmentBytes: 3 * BIG } };
    const store = new SqliteQueueStore(openDatabase(dataDir), opts);
    try {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        ids.push(await queueMessage(store, { to: [`u${i}@one.test`], body: patternBytes(BIG, i) }));
      }
      const [a, b, c, d] = ids as [string, string, string, string];
      const full = segmentOf(dataDir, a);
      assert.deepEqual([b, c].map((id) => segmentOf(dataDir, id)), [full, full]);
      const open = segmentOf(dataDir, d);
      assert.notEqual(open, full);
      assert.equal(await store.delete([a, b]), 2);
      await store.maintain(maintenanceOptions());
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(filledBodyFiles(dataDir), [full, open].sort(), "c is still in it");
      assert.deepEqual(await collectBytes(store.readBody(c)), patternBytes(BIG, 2));
      assert.equal(await store.delete([c, d]), 2);
      // Not before the deletion is on disk (maintenance syncs it first).
      assert.deepEqual(filledBodyFiles(dataDir), [full, open].sort());
      await store.maintain(maintenanceOptions());
      // The open one too: left open it would keep d's bytes until it filled (review rev13a L1).
      await eventually(() => filledBodyFiles(dataDir).length === 0);
      assert.deepEqual(filledBodyFiles(dataDir), []);
      const later = await queueMessage(store, { to: ["u9@one.test"], body: patternBytes(BIG, 9) });
      assert.ok(![full, open].includes(segmentOf(dataDir, later)), "a new segment");
      assert.deepEqual(await collectBytes(store.readBody(later)), patternBytes(BIG, 9));
      assert.equal(await store.delete([later]), 1);
    } finally {
      await store.close();
    }
    assert.deepEqual(filledBodyFiles(dataDir), []);
  });
});

Deno.test("after a crash a segment keeps its named bodies, takes no more and goes with the last (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const first = new SqliteQueueStore(openDatabase(dataDir));
    const kept = await queueMessage(first, { to: ["a@one.test"], body: patternBytes(BIG, 1) });
    const crashed = await first.begin({
      mailFrom: "",
      params: {},
      recipients: [rcpt("b@one.test")],
    });
    await crashed.write(patternBytes(BIG, 2)); // after kept's body, never committed
    const segment = segmentOf(dataDir, kept);
    // A crash: no close (which would tidy up), the next start reads what is on disk.
    const second = new SqliteQueueStore(openDatabase(dataDir));
    try {
      assert.deepEqual(filledBodyFiles(dataDir), [segment]);
      assert.deepEqual(await collectBytes(second.readBody(kept)), patternBytes(BIG, 1));
      const later = await queueMessage(second, { to: ["a@one.test"], body: patternBytes(BIG, 3) });
      assert.notEqual(segmentOf(dataDir, later), segment, "an old segment takes no more");
      assert.equal(await second.delete([kept]), 1);
      await second.maintain(maintenanceOptions());
      await eventually(() => !filledBodyFiles(dataDir).includes(segment));
      assert.deepEqual(filledBodyFiles(dataDir), [segmentOf(dataDir, later)]);
    } finally {
      await second.close();
      await first.close();
    }
  });
});

Deno.test("another process never removes a segment; serve's next start does once unnamed (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const serve = new SqliteQueueStore(openDatabase(dataDir), { bodyFiles: { segmentBytes: 1 } });
    const id = await queueMessage(serve, { to: ["a@one.test"], body: patternBytes(BIG, 1) });
    const segment = segmentOf(dataDir, id);
    await serve.close();
    const cli = new SqliteQueueStore(openDatabase(dataDir), { removeOrphans: false });
    try {
      assert.equal(await cli.delete([id]), 1);
      await cli.maintain(maintenanceOptions());
    } finally {
      await cli.close();
    }
    assert.deepEqual(filledBodyFiles(dataDir), [segment], "its bodies were never counted there");
    const again = new SqliteQueueStore(openDatabase(dataDir));
    await again.close();
    assert.deepEqual(filledBodyFiles(dataDir), []);
  });
});

Deno.test("upgrade from step 8: a body in a file of its own is read and goes with its row (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir), { bodyFiles: { segmentBytes: 1 } });
    const id = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 1) });
    const other = await queueMessage(store, { to: ["b@one.test"], body: patternBytes(BIG, 2) });
    await store.close();
    // The queue as step 8 left it: each body in a file of its own, the row naming the file.
    const raw = new DatabaseSync(`${dataDir}/odmr.db`);
    for (const m of [id, other]) {
      raw.prepare("UPDATE messages SET body_file = ? WHERE id = ?").run(segmentOf(dataDir, m), m);
    }
    raw.exec("UPDATE schema_version SET version = 8 WHERE component = 'queue'");
    raw.exec("ALTER TABLE messages DROP COLUMN submitter"); // step 13's, applied again at open
    raw.close();
    const file = segmentOf(dataDir, id);
    const next = new SqliteQueueStore(openDatabase(dataDir));
    try {
      assert.deepEqual(await collectBytes(next.readBody(id)), patternBytes(BIG, 1));
      assert.deepEqual(await collectBytes(next.readBody(other)), patternBytes(BIG, 2));
      const later = await queueMessage(next, { to: ["a@one.test"], body: patternBytes(BIG, 3) });
      assert.equal(bodyNameOf(dataDir, later), `${segmentOf(dataDir, later)}@0+${BIG}`);
      assert.deepEqual(await collectBytes(next.readBody(later)), patternBytes(BIG, 3));
      await Deno.writeFile(`${dataDir}/${BODY_DIR}/${file}`, new Uint8Array(1), { append: true });
      await assert.rejects(collectBytes(next.readBody(id)), /holds 102401 bytes, not 102400/);
      assert.equal(await next.delete([id]), 1);
      await next.maintain(maintenanceOptions());
      await eventually(() => !filledBodyFiles(dataDir).includes(file));
      assert.deepEqual(
        filledBodyFiles(dataDir),
        [segmentOf(dataDir, other), segmentOf(dataDir, later)].sort(),
      );
    } finally {
      await next.close();
    }
  });
});

Deno.test("upgrade to step 10: bodies named <segment>@<offset> survive the start and share their segment (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir));
    const a = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 1) });
    const b = await queueMessage(store, { to: ["b@one.test"], body: patternBytes(BIG, 2) });
    await store.close();
    const segment = segmentOf(dataDir, a);
    assert.equal(segmentOf(dataDir, b), segment);
    // The rows as step 9 wrote them: segment and offset, no length.
    const raw = new DatabaseSync(`${dataDir}/odmr.db`);
    for (const [m, offset] of [[a, 0], [b, BIG]] as const) {
      raw.prepare("UPDATE messages SET body_file = ? WHERE id = ?").run(`${segment}@${offset}`, m);
    }
    raw.close();
    // The receiving store's start removes the files no row names: these are named.
    const next = new SqliteQueueStore(openDatabase(dataDir));
    try {
      assert.deepEqual(filledBodyFiles(dataDir), [segment]);
      assert.deepEqual(await collectBytes(next.readBody(a)), patternBytes(BIG, 1));
      assert.deepEqual(await collectBytes(next.readBody(b)), patternBytes(BIG, 2));
      assert.equal(await next.delete([a]), 1);
      await next.maintain(maintenanceOptions());
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(filledBodyFiles(dataDir), [segment], "b is still in it");
      assert.deepEqual(await collectBytes(next.readBody(b)), patternBytes(BIG, 2));
      assert.equal(await next.delete([b]), 1);
      await next.maintain(maintenanceOptions());
      await eventually(() => filledBodyFiles(dataDir).length === 0);
      assert.deepEqual(filledBodyFiles(dataDir), [], "it went with the last of its bodies");
    } finally {
      await next.close();
    }
  });
});

Deno.test("a body's length is kept when its writer is done: the next body in its segment adds none (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const db = openDatabase(dataDir);
    applyMigrations(db, "queue", QUEUE_MIGRATIONS);
    const files = BodyFiles.open(db, NULL_LOGGER);
    assert.ok(files);
    try {
      const a = await files.take();
      a.write(patternBytes(BIG, 1));
      await a.finish();
      const nameOfA = a.name;
      const b = await files.take();
      assert.equal(b.name.split("@")[0], nameOfA.split("@")[0], "the same segment");
      b.write(patternBytes(BIG + 7, 2));
      await b.finish();
      assert.equal(a.name, nameOfA);
      assert.ok(a.name.endsWith(`@0+${BIG}`), a.name);
      assert.equal(b.name, `${nameOfA.split("@")[0]}@${BIG}+${BIG + 7}`);
      const read = (name: string, size: number) =>
        new Uint8Array([...files.read("m", name, size)].flatMap((chunk) => [...chunk]));
      assert.deepEqual(read(a.name, a.length), patternBytes(BIG, 1));
      assert.deepEqual(read(b.name, b.length), patternBytes(BIG + 7, 2));
    } finally {
      files.close();
      db.close();
    }
  });
});

Deno.test("a row's body_file is a name in the folder, never a path (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const id = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(BIG, 1) });
    const raw = new DatabaseSync(`${dataDir}/odmr.db`);
    for (const name of ["../odmr.db@0", `${segmentOf(dataDir, id)}@-1`, "x@0"]) {
      raw.prepare("UPDATE messages SET body_file = ? WHERE id = ?").run(name, id);
      await assert.rejects(collectBytes(store.readBody(id)), /is not a body file's name/);
    }
    raw.close();
  });
});

for (const [known, step] of [[8, "step 9"], [9, "step 10, whose names it cannot parse"]] as const) {
  Deno.test(`a program that knows only step ${known} refuses a database at ${step} (#13)`, async () => {
    await withTempDataDir((dataDir) => {
      openDatabase(dataDir).close();
      const raw = new DatabaseSync(`${dataDir}/odmr.db`);
      try {
        applyMigrations(raw, "queue", QUEUE_MIGRATIONS.slice(0, known + 1));
        assert.throws(
          () => applyMigrations(raw, "queue", QUEUE_MIGRATIONS.slice(0, known)),
          new RegExp(`version ${known + 1} is newer than this program knows \\(${known}\\)`),
        );
      } finally {
        raw.close();
      }
    });
  });
}
