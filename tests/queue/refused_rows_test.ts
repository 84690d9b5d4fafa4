/**
 * A message whose group COMMIT went through but whose WAL sync failed was refused (its sender
 * heard 4xx and sends it again); when the clean-up of its rows fails too, the rows stay. They must
 * never be delivered, or the message arrives twice: the store hides it from every lease (one live
 * already included) and deletes its rows on the next maintenance pass or at close, so the next
 * start does not find them; a deletion still failing at close is logged with the id to delete.
 * A kill -9 before any of that must not bring them back either: the next start finds them.
 * Faults: a `FakeSync` whose sync fails, and `failingExec` on the store's own connection for the
 * clean-up's `BEGIN IMMEDIATE`.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { REFUSED_IDS_FILE } from "../../src/queue/_refused.ts";
import type { Lease } from "../../src/queue/types.ts";
import { failingExec } from "../_helpers/failing_exec.ts";
import { FakeSync, turns } from "../_helpers/fake_wal_sync.ts";
import { maintenanceOptions, queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

const DOMAIN = "one.test";
const FINAL = /Cannot sync queue database: EIO/;

interface Refused {
  readonly store: SqliteQueueStore;
  readonly faults: { plan: string[] };
  readonly events: RecordedEvent[];
  /** The message queued and acknowledged before the failure. */
  readonly kept: string;
  /** The refused one whose rows stayed. */
  readonly refused: string;
  /** Claimed before the failure: live while the refused message's rows are there. */
  readonly lease: Lease;
}

/** Ids of the messages in the database file, read on a connection of its own. */
function idsOnDisk(dataDir: string): string[] {
  const raw = new DatabaseSync(`${dataDir}/odmr.db`);
  try {
    return raw.prepare("SELECT id FROM messages ORDER BY id").all().map((r) => String(r.id));
  } finally {
    raw.close();
  }
}

/**
 * A store on `dataDir` where one message is acknowledged and a lease taken, then one is refused
 * with its rows left (`unrecorded`: and its id not in the ids file). The test closes the store.
 */
async function refusedStore(
  dataDir: string,
  opts: { unrecorded?: boolean } = {},
): Promise<Refused> {
  const sync = new FakeSync();
  const events: RecordedEvent[] = [];
  const db = openDatabase(dataDir);
  const store = new SqliteQueueStore(db, { walSync: sync, logger: recordingLogger(events) });
  // A directory where the ids file goes: the refused id cannot be recorded.
  if (opts.unrecorded === true) await Deno.mkdir(`${dataDir}/${REFUSED_IDS_FILE}`);
  const faults = failingExec(db);
  const queued = queueMessage(store, { to: [`a@${DOMAIN}`] });
  await syncStarted(sync, 1);
  sync.finish(0);
  const kept = await queued;
  const claim = await store.claim([DOMAIN], { owner: "t", leaseSeconds: 60 });
  if (claim.kind !== "claimed") throw new Error(`claim: ${claim.kind}`);
  const writer = await store.begin({ mailFrom: "", params: {}, recipients: [rcpt(`b@${DOMAIN}`)] });
  await writer.write(new TextEncoder().encode("Subject: twice?\r\n\r\nno\r\n"));
  const committing = writer.commit();
  committing.catch(() => {});
  // The COMMIT went through; its sync fails; the clean-up of its rows cannot begin.
  await syncStarted(sync, 2);
  faults.plan.push("BEGIN IMMEDIATE");
  sync.finish(1, new Error("EIO"));
  await assert.rejects(committing, FINAL);
  assert.deepEqual(faults.plan, [], "the clean-up failed");
  assert.ok(events.some((e) => e.event === "queue_abort_cleanup_failed"));
  assert.deepEqual(idsOnDisk(dataDir), [kept, writer.id].sort(), "its rows stayed");
  return { store, faults, events, kept, refused: writer.id, lease: claim.lease };
}

/** Waits (bounded) until `n` syncs were started. */
async function syncStarted(sync: FakeSync, n: number): Promise<void> {
  for (let i = 0; i < 100 && sync.pending.length < n; i++) await turns(1);
  assert.equal(sync.pending.length, n);
}

/** Closes `store`: after the failed sync nothing is synced, and close says so. */
async function closeFailed(store: SqliteQueueStore): Promise<void> {
  await assert.rejects(store.close(), FINAL);
}

async function offered(lease: Lease): Promise<string[]> {
  const ids: string[] = [];
  for await (const m of lease.messages()) ids.push(m.id);
  return ids;
}

Deno.test("a refused message whose rows stayed is not offered, not even by a live lease (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const { store, kept, refused, lease } = await refusedStore(dataDir);
    try {
      assert.deepEqual(await offered(lease), [kept]);
      // A drain that listed it before its sender was refused does not send it either.
      assert.throws(
        () => [...lease.readBody(refused) as Iterable<Uint8Array>],
        /its sender was refused/,
      );
      assert.deepEqual((await store.list()).map((m) => m.id), [kept]);
    } finally {
      await closeFailed(store);
    }
  });
});

Deno.test("the rows of a refused message go at close: the next start does not deliver it (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const { store, kept, events } = await refusedStore(dataDir);
    await closeFailed(store);
    const next = new SqliteQueueStore(openDatabase(dataDir));
    try {
      assert.deepEqual((await next.list()).map((m) => m.id), [kept]);
    } finally {
      await next.close();
    }
    assert.ok(events.some((e) => e.event === "queue_refused_removed"));
  });
});

Deno.test("a maintenance pass deletes a refused message's rows; one still failing at close is logged (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const first = await refusedStore(dataDir);
    // The pass itself fails after the failed sync (its transactions are synced), not the retry.
    await assert.rejects(first.store.maintain(maintenanceOptions()), FINAL);
    assert.deepEqual(idsOnDisk(dataDir), [first.kept]);
    await closeFailed(first.store);
  });
  // Every retry fails as the clean-up did: at the pass, then at close. The ids file names it:
  // the next start deletes it; when the file could not take it, the operator must.
  for (const unrecorded of [false, true]) {
    await withTempDataDir(async (dataDir) => {
      const { store, faults, events, refused } = await refusedStore(dataDir, { unrecorded });
      faults.plan.push("BEGIN IMMEDIATE");
      await assert.rejects(store.maintain(maintenanceOptions()), FINAL);
      assert.ok(events.some((e) => e.event === "queue_refused_kept" && e.fields.id === refused));
      faults.plan.push("BEGIN IMMEDIATE");
      await closeFailed(store);
      assert.deepEqual(faults.plan, []);
      const left = events.find((e) => e.event === "queue_refused_left");
      assert.equal(left?.fields.ids, refused);
      assert.match(
        String(left?.fields.action),
        unrecorded
          ? /^delete \S+ with `queue delete ID…`/
          : /^none: serve deletes them at its next start/,
      );
      assert.equal(events.some((e) => e.event === "queue_refused_unrecorded"), unrecorded);
    });
  }
});

Deno.test("a refused message whose rows stayed is not delivered after a kill -9 and a restart: the next start removes them (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const { store, kept, refused } = await refusedStore(dataDir);
    try {
      // The process is killed now: no maintenance pass, no close. serve starts again.
      const next = new SqliteQueueStore(openDatabase(dataDir));
      try {
        // As serve's start does: the killed process's lease goes.
        assert.equal(await next.releaseAllLeases(), 1);
        const lease = await next.claim([DOMAIN], { owner: "t2", leaseSeconds: 60 });
        if (lease.kind !== "claimed") throw new Error(`claim: ${lease.kind}`);
        assert.deepEqual(
          await offered(lease.lease),
          [kept],
          `the refused message ${refused} is offered: its sender sent it again, so it arrives twice`,
        );
        await lease.lease.release();
        assert.deepEqual(idsOnDisk(dataDir), [kept], "its rows are removed at the start");
        await assert.rejects(Deno.stat(`${dataDir}/${REFUSED_IDS_FILE}`), Deno.errors.NotFound);
      } finally {
        await next.close();
      }
      // And the start after that finds nothing left to remove.
      const third = new SqliteQueueStore(openDatabase(dataDir));
      try {
        assert.deepEqual((await third.list()).map((m) => m.id), [kept]);
      } finally {
        await third.close();
      }
    } finally {
      // The killed process's connection (its close deletes nothing any more).
      await closeFailed(store);
    }
  });
});
