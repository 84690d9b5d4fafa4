/**
 * What segment files keep on disk (review rev13a of schema step 9, issue 13). Bodies share a
 * segment only with bodies of the same key (one ATRN domain, else "mixed"); a body of
 * BIG_BODY_BYTES or more is alone in its segment (moved there if it started after others); a
 * segment none of whose bodies is named goes, open or not. The bound the docs state: body files
 * hold the queued bodies plus, per segment that still holds one, under SEGMENT_BYTES +
 * BIG_BODY_BYTES of bodies gone, and only bodies of that segment's key.
 */
import assert from "node:assert/strict";
import { BODY_DIR, OPEN_SEGMENTS } from "../../src/queue/_body_files.ts";
import type { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import {
  bodyNameOf,
  eventually,
  maintenanceOptions,
  patternBytes,
  queueMessage,
  rcpt,
  segmentOf,
  withStore,
} from "../_helpers/queue_fixtures.ts";

const KB = 1024;
const MB = 1024 * 1024;
/** SEGMENT_BYTES + BIG_BODY_BYTES: what a segment holds at most besides one big body alone. */
const SEGMENT_BOUND = 4 * MB + 1 * MB;

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

/** Queues one body of `size` bytes (patternBytes of `seed`) for `to`; returns its message's id. */
function queueBody(
  store: SqliteQueueStore,
  to: string,
  size: number,
  seed: number,
): Promise<string> {
  return queueMessage(store, { to: [to], body: patternBytes(size, seed) });
}

/** Removes `ids` as their delivery would, then maintenance syncs that and frees what they held. */
async function deliverAndMaintain(store: SqliteQueueStore, ids: string[]): Promise<void> {
  await store.delete(ids);
  await store.maintain(maintenanceOptions());
}

/** The body files come down to at most `bound` bytes (they are unlinked off the loop). */
async function assertDiskOfBodiesAtMost(dataDir: string, bound: number): Promise<void> {
  await eventually(() => diskOfBodies(dataDir) <= bound);
  const disk = diskOfBodies(dataDir);
  assert.ok(disk <= bound, `the body files hold ${disk} bytes, over ${bound}`);
}

Deno.test("R1: a held message does not keep a 20 MB body of another domain delivered since (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const held = await queueBody(store, "a@offline.test", 64 * KB, 1);
    const big = await queueBody(store, "b@online.test", 20 * MB, 2);
    await deliverAndMaintain(store, [big]);
    await assertDiskOfBodiesAtMost(dataDir, 64 * KB + SEGMENT_BOUND);
    assert.deepEqual(await collectBytes(store.readBody(held)), patternBytes(64 * KB, 1));
  });
});

Deno.test("R1b: a body that grows to 1 MiB after another moves to a segment of its own (#13)", async () => {
  await withStore(async (store, dataDir) => {
    // Same domain, so the same key: only the move keeps the big body out of held's segment.
    const held = await queueBody(store, "a@one.test", 64 * KB, 1);
    const big = await queueBody(store, "b@one.test", 20 * MB + 3, 2);
    assert.notEqual(segmentOf(dataDir, big), segmentOf(dataDir, held));
    assert.equal(bodyNameOf(dataDir, big), `${segmentOf(dataDir, big)}@0+${20 * MB + 3}`);
    assert.deepEqual(await collectBytes(store.readBody(big)), patternBytes(20 * MB + 3, 2));
    // Its segment takes no body after it; held's segment takes the next one.
    const next = await queueBody(store, "c@one.test", 100 * KB, 3);
    assert.equal(segmentOf(dataDir, next), segmentOf(dataDir, held));
    await deliverAndMaintain(store, [big, next]);
    await assertDiskOfBodiesAtMost(dataDir, 64 * KB + SEGMENT_BOUND);
    assert.deepEqual(await collectBytes(store.readBody(held)), patternBytes(64 * KB, 1));
  });
});

Deno.test("R2: mail held for one domain does not keep the delivered mail of another on disk (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const held: string[] = [];
    for (let round = 0; round < 20; round++) {
      held.push(await queueBody(store, "a@offline.test", 64 * KB, round));
      const done: string[] = [];
      for (let i = 0; i < 40; i++) done.push(await queueBody(store, "b@online.test", 100 * KB, i));
      await deliverAndMaintain(store, done);
    }
    // The offline domain's bodies share segments of their own, with no body gone in them.
    await assertDiskOfBodiesAtMost(dataDir, 20 * 64 * KB + SEGMENT_BOUND);
    for (const [round, id] of held.entries()) {
      assert.deepEqual(await collectBytes(store.readBody(id)), patternBytes(64 * KB, round));
    }
  });
});

Deno.test("R3: segments a burst left open go once their bodies are gone (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const burst = Array.from(
      { length: 8 },
      (_, i) => queueBody(store, "b@online.test", 500 * KB, i),
    );
    await store.delete(await Promise.all(burst));
    for (let i = 0; i < 30; i++) {
      await deliverAndMaintain(store, [await queueBody(store, "b@online.test", 100 * KB, i)]);
    }
    // The queue is empty: so is every body file (spares are empty).
    await assertDiskOfBodiesAtMost(dataDir, 0);
  });
});

Deno.test("bodies share segments by ATRN domain; several domains or the mx route: mixed (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const q = (to: Parameters<typeof queueMessage>[1]["to"], seed: number) =>
      queueMessage(store, { to, body: patternBytes(100 * KB, seed) });
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
      assert.deepEqual(await collectBytes(store.readBody(id)), patternBytes(100 * KB, i + 1));
    }
  });
});

Deno.test("past OPEN_SEGMENTS keys the segment unused longest is closed, not the newest (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const first: string[] = [];
    for (let i = 0; i <= OPEN_SEGMENTS; i++) {
      first.push(await queueBody(store, `u@d${i}.test`, 100 * KB, i));
    }
    // d0 was closed when d16's segment was released; d1 .. d16 take more bodies.
    const again0 = await queueBody(store, "v@d0.test", 100 * KB, 50);
    assert.notEqual(segmentOf(dataDir, again0), segmentOf(dataDir, first[0] ?? ""));
    const again16 = await queueBody(store, `v@d${OPEN_SEGMENTS}.test`, 100 * KB, 51);
    assert.equal(segmentOf(dataDir, again16), segmentOf(dataDir, first[OPEN_SEGMENTS] ?? ""));
  });
});

Deno.test("a body aborted while it moves leaves no file and no row behind (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const held = await queueBody(store, "a@one.test", 64 * KB, 1);
    const w = await store.begin({ mailFrom: "", params: {}, recipients: [rcpt("b@one.test")] });
    await w.write(patternBytes(MB - 64 * KB, 2)); // in held's segment, after it
    const writing = w.write(patternBytes(128 * KB, 3)); // its first chunk makes it big: it moves
    await w.abort(); // while the bytes so far are copied
    await writing;
    await assert.rejects(w.commit());
    assert.deepEqual((await store.list()).map((m) => m.id), [held]);
    await deliverAndMaintain(store, [held]);
    await assertDiskOfBodiesAtMost(dataDir, 0);
  });
});
