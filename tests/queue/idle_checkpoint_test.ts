/**
 * The store's own WAL checkpoint (issue 13): once writes pause, not inside a COMMIT in the middle
 * of a burst. Waits are bounded polls on what the test observes, never a fixed sleep that decides.
 */
import assert from "node:assert/strict";
import { DATABASE_FILE } from "../../src/queue/db.ts";
import { IdleCheckpoint } from "../../src/queue/_idle_checkpoint.ts";
import { WAL_CHECKPOINT_PAGES, WAL_KEEP_BYTES } from "../../src/queue/_wal_sync.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import {
  eventually,
  maintenanceOptions,
  queueMessage,
  withStore,
} from "../_helpers/queue_fixtures.ts";
import { fileBytes } from "../_helpers/temp_db.ts";

const IDLE_MS = 20;
/** How long to wait for a checkpoint that should come: 1000 polls 5 ms apart, 5 s at least. */
const WAIT = { tries: 1000, everyMs: 5 } as const;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("a burst is copied into the database file once writes pause, not while they come (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const path = `${dataDir}/${DATABASE_FILE}`;
    const body = new Uint8Array(256 * 1024);
    for (let i = 0; i < body.length; i += 65536) {
      crypto.getRandomValues(body.subarray(i, i + 65536));
    }
    const before = fileBytes(path);
    const id = await queueMessage(store, { to: ["u@local.test"], body });
    // Far below WAL_CHECKPOINT_PAGES: SQLite's own checkpoint never ran, the body is in the WAL.
    assert.ok(256 / 4 < WAL_CHECKPOINT_PAGES);
    assert.ok(fileBytes(path) < before + body.length, "copied inside the COMMIT");
    assert.ok(
      await eventually(() => fileBytes(path) >= before + body.length, WAIT),
      `the database file did not take the body once writes paused (${fileBytes(path)} bytes)`,
    );
    // The next write starts the WAL over from its start: it does not grow.
    const wal = fileBytes(`${path}-wal`);
    await queueMessage(store, { to: ["u@local.test"], body: new Uint8Array(1024) });
    assert.equal(fileBytes(`${path}-wal`), wal, "the WAL grew after the checkpoint");
    assert.deepEqual(await collectBytes(store.readBody(id)), body);
  }, { idleCheckpointMs: IDLE_MS, bodyFiles: false });
});

Deno.test("while a session is open (isIdle false) the copy waits for it to end (#13)", async () => {
  let isIdle = false;
  await withStore(async (store, dataDir) => {
    const path = `${dataDir}/${DATABASE_FILE}`;
    const body = new Uint8Array(256 * 1024).fill(120);
    const before = fileBytes(path);
    await queueMessage(store, { to: ["u@local.test"], body });
    await delay(IDLE_MS * 5);
    assert.ok(fileBytes(path) < before + body.length, "copied while a session was open");
    isIdle = true;
    assert.ok(
      await eventually(() => fileBytes(path) >= before + body.length, WAIT),
      "no checkpoint once the sessions ended",
    );
  }, { bodyFiles: false, idleCheckpointMs: IDLE_MS, isIdle: () => isIdle });
});

Deno.test("a maintenance pass does not copy the WAL while a session is open (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const path = `${dataDir}/${DATABASE_FILE}`;
    const body = new Uint8Array(1024 * 1024).fill(120);
    const before = fileBytes(path);
    await queueMessage(store, { to: ["u@local.test"], body });
    await store.maintain(maintenanceOptions({ isLocalDomain: () => true }));
    assert.ok(fileBytes(path) < before + body.length, "the pass copied the WAL");
  }, { isIdle: () => false, bodyFiles: false });
});

Deno.test("a maintenance pass while a commit waits leaves the checkpoint for the pause (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const path = `${dataDir}/${DATABASE_FILE}`;
    const body = new Uint8Array(256 * 1024).fill(120);
    const before = fileBytes(path);
    await queueMessage(store, { to: ["u@local.test"], body });
    // A second message's commit is under way (its 250 not yet given) when the pass runs.
    const writer = await store.begin({
      mailFrom: "",
      params: {},
      recipients: [{ address: "u@local.test", domain: "local.test" }],
    });
    await writer.write(new Uint8Array(1024));
    const committed = writer.commit();
    await store.maintain(maintenanceOptions({ isLocalDomain: () => true }));
    assert.ok(
      fileBytes(path) < before + body.length,
      "the pass copied the WAL while a commit waited",
    );
    await committed;
    assert.ok(
      await eventually(() => fileBytes(path) >= before + body.length, WAIT),
      "no checkpoint once writes paused after the pass",
    );
  }, { idleCheckpointMs: IDLE_MS, bodyFiles: false });
});

Deno.test("writes that never pause still keep the WAL bounded (SQLite's checkpoint at the cap) (#13)", async () => {
  // Never idle: only SQLite's own checkpoint (WAL_CHECKPOINT_PAGES) can bound the WAL.
  await withStore(async (store, dataDir) => {
    const wal = `${dataDir}/${DATABASE_FILE}-wal`;
    const body = new Uint8Array(256 * 1024).fill(120);
    // Twice the cap's bytes, 8 commits at a time.
    const total = 2 * WAL_KEEP_BYTES;
    let largest = 0;
    for (let written = 0; written < total; written += 8 * body.length) {
      await Promise.all(
        Array.from({ length: 8 }, () => queueMessage(store, { to: ["u@local.test"], body })),
      );
      largest = Math.max(largest, fileBytes(wal));
    }
    // The cap, plus the transaction that crossed it (8 bodies and their pages).
    const bound = WAL_KEEP_BYTES + 8 * body.length * 1.1 + 64 * 4096;
    assert.ok(largest <= bound, `WAL reached ${largest} bytes (bound ${bound})`);
  }, { isIdle: () => false, bodyFiles: false });
});

Deno.test("IdleCheckpoint runs once after a pause, and again only after a new commit", async () => {
  let runs = 0;
  const idle = new IdleCheckpoint({ run: () => runs++, isQuiet: () => true, idleMs: IDLE_MS });
  try {
    idle.noteCommit();
    assert.ok(await eventually(() => runs === 1, WAIT), "no checkpoint after the pause");
    await delay(IDLE_MS * 4);
    assert.equal(runs, 1, "a checkpoint without a commit since the last one");
    idle.noteCommit();
    assert.ok(await eventually(() => runs === 2, WAIT), "no checkpoint after the second pause");
  } finally {
    idle.close();
  }
});

Deno.test("IdleCheckpoint waits while commits keep coming", async () => {
  let runs = 0;
  const idle = new IdleCheckpoint({ run: () => runs++, isQuiet: () => true, idleMs: IDLE_MS * 5 });
  try {
    // A commit every IDLE_MS for 15 × IDLE_MS: never a pause of 5 × IDLE_MS.
    for (let i = 0; i < 15; i++) {
      idle.noteCommit();
      await delay(IDLE_MS);
      assert.equal(runs, 0, `a checkpoint between commits (after commit ${i})`);
    }
    assert.ok(await eventually(() => runs === 1, WAIT), "no checkpoint once the commits stopped");
  } finally {
    idle.close();
  }
});

Deno.test("IdleCheckpoint waits while something is open or waiting, and stops at close()", async () => {
  let runs = 0;
  let quiet = false;
  const idle = new IdleCheckpoint({ run: () => runs++, isQuiet: () => quiet, idleMs: IDLE_MS });
  try {
    idle.noteCommit();
    await delay(IDLE_MS * 5);
    assert.equal(runs, 0, "a checkpoint while not quiet");
    quiet = true;
    assert.ok(await eventually(() => runs === 1, WAIT), "no checkpoint once quiet");
    idle.noteCommit();
    idle.close();
    // The store's last COMMIT comes after close() (the group commits what is open).
    idle.noteCommit();
    await delay(IDLE_MS * 5);
    assert.equal(runs, 1, "a checkpoint after close()");
  } finally {
    idle.close();
  }
});
