/**
 * What segment files keep on disk (review rev13a of schema step 9, issue 13). Bodies share a
 * segment only with bodies of the same key (one ATRN domain, else "mixed"); a body of
 * BIG_BODY_BYTES or more is alone in its segment (moved there if it started after others); a
 * segment none of whose bodies is named goes, open or not. The bound the docs state: body files
 * hold the queued bodies plus, per segment that still holds one, under SEGMENT_BYTES +
 * BIG_BODY_BYTES of bodies gone, and only bodies of that segment's key.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../../src/queue/db.ts";
import { BODY_DIR, OPEN_SEGMENTS } from "../../src/queue/_body_files.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { maintenanceOptions, queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

const KB = 1024;
const MB = 1024 * 1024;
/** SEGMENT_BYTES + BIG_BODY_BYTES: what a segment holds at most besides one big body alone. */
const SEGMENT_BOUND = 4 * MB + 1 * MB;

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed + (i >> 10)) & 0xff;
  return out;
}

/** Bytes of all files in the body folder. */
function diskOfBodies(dataDir: string): number {
  let total = 0;
  for (const e of Deno.readDirSync(`${dataDir}/${BODY_DIR}`)) {
    try {
      total += Deno.statSync(`${dataDir}/${BODY_DIR}/${e.name}`).size;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return total;
}

/** The segment of message `id`, read on a connection of its own. */
function segmentOf(dataDir: string, id: string): string {
  const raw = new DatabaseSync(`${dataDir}/odmr.db`);
  try {
    const row = raw.prepare("SELECT body_file FROM messages WHERE id = ?").get(id);
    return String(row?.body_file).split("@")[0] ?? "";
  } finally {
    raw.close();
  }
}

function offsetOf(dataDir: string, id: string): string {
  const raw = new DatabaseSync(`${dataDir}/odmr.db`);
  try {
    const row = raw.prepare("SELECT body_file FROM messages WHERE id = ?").get(id);
    return String(row?.body_file).split("@")[1] ?? "";
  } finally {
    raw.close();
  }
}

/** Waits (bounded) until `check` holds: files are unlinked off the loop. */
async function eventually(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
}

Deno.test("R1: a held message does not keep a 20 MB body of another domain delivered since (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir));
    try {
      const held = await queueMessage(store, { to: ["a@offline.test"], body: bytes(64 * KB, 1) });
      const big = await queueMessage(store, { to: ["b@online.test"], body: bytes(20 * MB, 2) });
      await store.delete([big]);
      await store.maintain(maintenanceOptions());
      const queued = 64 * KB;
      await eventually(() => diskOfBodies(dataDir) <= queued + SEGMENT_BOUND);
      assert.ok(diskOfBodies(dataDir) <= queued + SEGMENT_BOUND, `${diskOfBodies(dataDir)} bytes`);
      assert.deepEqual(await collectBytes(store.readBody(held)), bytes(64 * KB, 1));
    } finally {
      await store.close();
    }
  });
});

Deno.test("R1b: a body that grows to 1 MiB after another moves to a segment of its own (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir));
    try {
      // Same domain, so the same key: only the move keeps the big body out of held's segment.
      const held = await queueMessage(store, { to: ["a@one.test"], body: bytes(64 * KB, 1) });
      const big = await queueMessage(store, { to: ["b@one.test"], body: bytes(20 * MB + 3, 2) });
      assert.notEqual(segmentOf(dataDir, big), segmentOf(dataDir, held));
      assert.equal(offsetOf(dataDir, big), "0");
      assert.deepEqual(await collectBytes(store.readBody(big)), bytes(20 * MB + 3, 2));
      // Its segment takes no body after it; held's segment takes the next one.
      const next = await queueMessage(store, { to: ["c@one.test"], body: bytes(100 * KB, 3) });
      assert.equal(segmentOf(dataDir, next), segmentOf(dataDir, held));
      await store.delete([big, next]);
      await store.maintain(maintenanceOptions());
      const queued = 64 * KB;
      await eventually(() => diskOfBodies(dataDir) <= queued + SEGMENT_BOUND);
      assert.ok(diskOfBodies(dataDir) <= queued + SEGMENT_BOUND, `${diskOfBodies(dataDir)} bytes`);
      assert.deepEqual(await collectBytes(store.readBody(held)), bytes(64 * KB, 1));
    } finally {
      await store.close();
    }
  });
});

Deno.test("R2: mail held for one domain does not keep the delivered mail of another on disk (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir));
    try {
      const held: string[] = [];
      for (let round = 0; round < 20; round++) {
        held.push(
          await queueMessage(store, { to: ["a@offline.test"], body: bytes(64 * KB, round) }),
        );
        const done: string[] = [];
        for (let i = 0; i < 40; i++) {
          done.push(
            await queueMessage(store, { to: ["b@online.test"], body: bytes(100 * KB, i) }),
          );
        }
        await store.delete(done);
        await store.maintain(maintenanceOptions());
      }
      const queued = 20 * 64 * KB;
      // The offline domain's bodies share segments of their own, with no body gone in them.
      await eventually(() => diskOfBodies(dataDir) <= queued + SEGMENT_BOUND);
      assert.ok(diskOfBodies(dataDir) <= queued + SEGMENT_BOUND, `${diskOfBodies(dataDir)} bytes`);
      for (const [round, id] of held.entries()) {
        assert.deepEqual(await collectBytes(store.readBody(id)), bytes(64 * KB, round));
      }
    } finally {
      await store.close();
    }
  });
});

Deno.test("R3: segments a burst left open go once their bodies are gone (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir));
    try {
      const ids = await Promise.all(
        Array.from(
          { length: 8 },
          (_, i) => queueMessage(store, { to: ["b@online.test"], body: bytes(500 * KB, i) }),
        ),
      );
      await store.delete(ids);
      for (let i = 0; i < 30; i++) {
        const id = await queueMessage(store, { to: ["b@online.test"], body: bytes(100 * KB, i) });
        await store.delete([id]);
        await store.maintain(maintenanceOptions());
      }
      // The queue is empty: so is every body file (spares are empty).
      await eventually(() => diskOfBodies(dataDir) === 0);
      assert.equal(diskOfBodies(dataDir), 0);
    } finally {
      await store.close();
    }
  });
});

Deno.test("bodies share segments by ATRN domain; several domains or the mx route: mixed (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir));
    try {
      const q = (to: Parameters<typeof queueMessage>[1]["to"], seed: number) =>
        queueMessage(store, { to, body: bytes(100 * KB, seed) });
      const a1 = await q(["x@a.test"], 1);
      const b1 = await q(["x@b.test"], 2);
      const a2 = await q(["y@a.test", "z@a.test"], 3);
      const m1 = await q(["x@a.test", "x@b.test"], 4);
      const m2 = await q([rcpt("x@a.test", { route: "mx" })], 5);
      const seg = (id: string) => segmentOf(dataDir, id);
      assert.equal(seg(a2), seg(a1));
      assert.equal(seg(m2), seg(m1));
      assert.equal(new Set([seg(a1), seg(b1), seg(m1)]).size, 3);
      for (const [i, id] of [a1, b1, a2, m1, m2].entries()) {
        assert.deepEqual(await collectBytes(store.readBody(id)), bytes(100 * KB, i + 1));
      }
    } finally {
      await store.close();
    }
  });
});

Deno.test("past OPEN_SEGMENTS keys the segment unused longest is closed, not the newest (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir));
    try {
      const first: string[] = [];
      for (let i = 0; i <= OPEN_SEGMENTS; i++) {
        first.push(await queueMessage(store, { to: [`u@d${i}.test`], body: bytes(100 * KB, i) }));
      }
      // d0 was closed when d16's segment was released; d1 .. d16 take more bodies.
      const again0 = await queueMessage(store, { to: ["v@d0.test"], body: bytes(100 * KB, 50) });
      assert.notEqual(segmentOf(dataDir, again0), segmentOf(dataDir, first[0] ?? ""));
      const again16 = await queueMessage(store, {
        to: [`v@d${OPEN_SEGMENTS}.test`],
        body: bytes(100 * KB, 51),
      });
      assert.equal(segmentOf(dataDir, again16), segmentOf(dataDir, first[OPEN_SEGMENTS] ?? ""));
    } finally {
      await store.close();
    }
  });
});

Deno.test("a body aborted while it moves leaves no file and no row behind (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir));
    try {
      const held = await queueMessage(store, { to: ["a@one.test"], body: bytes(64 * KB, 1) });
      const w = await store.begin({ mailFrom: "", params: {}, recipients: [rcpt("b@one.test")] });
      await w.write(bytes(MB - 64 * KB, 2)); // in held's segment, after it
      const writing = w.write(bytes(128 * KB, 3)); // its first chunk makes it big: it moves
      await w.abort(); // while the bytes so far are copied
      await writing;
      await assert.rejects(w.commit());
      assert.deepEqual((await store.list()).map((m) => m.id), [held]);
      await store.delete([held]);
      await store.maintain(maintenanceOptions());
      await eventually(() => diskOfBodies(dataDir) === 0);
      assert.equal(diskOfBodies(dataDir), 0);
    } finally {
      await store.close();
    }
  });
});
