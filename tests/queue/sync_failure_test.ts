/**
 * The first failed WAL sync is final (#13, "fsyncgate"): Linux may drop the pages a failed
 * write-back left and mark them clean, so a later fdatasync can succeed without writing them.
 * The commit whose sync failed and every later durable commit fail until the process restarts,
 * even when a later sync "succeeds"; a sync that ran beside the failed one acknowledges nothing;
 * the sender hears 451 4.3.0, never 250; the log says once to restart, /healthz (ping) fails.
 * Driven by a fake `WalSync` whose syncs the test finishes; the real one's descriptors last.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { NewMessage } from "../../src/queue/types.ts";
import { FileWalSync, MAX_SYNCS } from "../../src/queue/_wal_sync.ts";
import { QueueSink } from "../../src/smtp/sinks/queue_sink.ts";
import { FakeSync, track, turns } from "../_helpers/fake_wal_sync.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { type Session, startReady } from "../smtp/_session.ts";

const MESSAGE: NewMessage = {
  mailFrom: "sender@example.net",
  params: {},
  recipients: [{ address: "a@example.org", domain: "example.org" }],
};
const enc = new TextEncoder();
const EIO = () => new Error("EIO");
/** What every refused commit says once a sync failed. */
const FINAL =
  /Cannot sync queue database: EIO; every later message is refused until serve is restarted/;

function failingStore(
  opts: { syncInline?: () => boolean } = {},
): { store: SqliteQueueStore; sync: FakeSync; events: RecordedEvent[] } {
  const sync = new FakeSync();
  const events: RecordedEvent[] = [];
  const store = new SqliteQueueStore(new DatabaseSync(":memory:"), {
    walSync: sync,
    logger: recordingLogger(events),
    ...opts,
  });
  return { store, sync, events };
}

/** A message written but not committed yet. */
async function started(store: SqliteQueueStore, text: string) {
  const w = await store.begin(MESSAGE);
  await w.write(enc.encode(`Subject: ${text}\r\n\r\n${text}\r\n`));
  return w;
}

/** Finishes every sync started so far and not finished yet, all alike (bounded). */
async function finishStarted(sync: FakeSync, from: { n: number }, err?: Error): Promise<void> {
  await turns();
  while (from.n < sync.pending.length) sync.finish(from.n++, err);
  await turns();
}

/** The `queue_sync_failed` lines logged. */
function syncFailures(events: RecordedEvent[]): RecordedEvent[] {
  return events.filter((e) => e.event === "queue_sync_failed");
}

Deno.test("a failed sync is final: that commit and every later one fail, even if a later sync succeeds (#13)", async () => {
  const { store, sync, events } = failingStore();
  const finished = { n: 0 };
  const lost = (await started(store, "lost")).commit();
  lost.catch(() => {});
  await finishStarted(sync, finished, EIO());
  await assert.rejects(lost, FINAL);
  await turns();
  assert.deepEqual(await store.list(), [], "no row of the refused message stays");

  // The next sync would "succeed" (the failed pages now look clean): the commit must fail anyway.
  const next = (await started(store, "next")).commit();
  const state = track(next);
  await finishStarted(sync, finished);
  assert.equal(state.state, "rejected", "a commit after the failed sync was acknowledged");
  await assert.rejects(next, FINAL);
  assert.deepEqual(await store.list(), []);

  // Transactions of their own (a claim) fail too, and the health check says why.
  await assert.rejects(store.claim(["example.org"], { owner: "t", leaseSeconds: 60 }), FINAL);
  await assert.rejects(store.ping(), FINAL);
  const logged = syncFailures(events);
  assert.equal(logged.length, 1, "logged once");
  assert.match(String(logged[0]?.fields.action), /restart serve/);
  // Nothing is synced at close either: the database is left for recovery at the next start.
  await assert.rejects(store.close(), FINAL);
});

for (const failing of [0, 1]) {
  Deno.test(`a sync that ran beside the failed one (#${failing}) acknowledges nothing (#13)`, async () => {
    const { store, sync, events } = failingStore();
    const commits = [(await started(store, "one")).commit()];
    await turns();
    commits.push((await started(store, "two")).commit());
    await turns();
    for (const c of commits) c.catch(() => {});
    assert.equal(sync.pending.length, 2, "two syncs at once");
    // The failure reaches one sync; the other, on pages the failure dropped, may well succeed.
    sync.finish(failing, EIO());
    await turns();
    sync.finish(1 - failing);
    await turns();
    for (const c of commits) await assert.rejects(c, FINAL);
    assert.equal(syncFailures(events).length, 1);
    await store.close().catch(() => {});
  });
}

Deno.test("a failed sync on the loop (syncInline) is final too (#13)", async () => {
  const { store, sync, events } = failingStore({ syncInline: () => true });
  sync.syncNowError = EIO();
  await assert.rejects((await started(store, "lost")).commit(), FINAL);
  sync.syncNowError = undefined;
  const calls = sync.syncNowCalls;
  await assert.rejects((await started(store, "next")).commit(), FINAL);
  assert.equal(sync.syncNowCalls, calls, "no sync tried after the failed one");
  assert.equal(sync.pending.length, 0);
  assert.equal(syncFailures(events).length, 1);
  await store.close().catch(() => {});
});

Deno.test("after a failed sync a settlement still goes ahead (it never waited for one) (#13)", async () => {
  const { store, sync } = failingStore({ syncInline: () => true });
  await queueMessage(store, { from: "s@example.net", to: ["a@example.org"] });
  const claim = await store.claim(["example.org"], { owner: "t", leaseSeconds: 60 });
  if (claim.kind !== "claimed") throw new Error(`claim: ${claim.kind}`);
  const ids: { recipientId: number; messageId: string }[] = [];
  for await (const m of claim.lease.messages()) {
    for (const r of m.recipients) ids.push({ recipientId: r.id, messageId: m.id });
  }
  sync.syncNowError = EIO();
  await assert.rejects((await started(store, "lost")).commit(), FINAL);
  await claim.lease.settle(ids.map((id) => ({
    ...id,
    outcome: "delivered" as const,
    reply: "250 ok",
  })));
  assert.deepEqual(await store.list(), [], "delivered and gone");
  await store.close().catch(() => {});
});

Deno.test("a sync that fails after close() (its descriptor closed under it) is no disk failure (#13)", async () => {
  const { store, sync, events } = failingStore();
  const commit = track((await started(store, "closing")).commit());
  await turns();
  assert.equal(sync.pending.length, 1);
  await store.close();
  await turns();
  assert.equal(commit.state, "resolved", "close() synced it itself");
  sync.finish(0, new Error("Bad resource ID"));
  await turns();
  assert.deepEqual(syncFailures(events), [], "nothing to restart for");
});

/** Sends one message of `text` and reads the reply to its end of data, finishing each sync
 * started meanwhile with `err` (or success). Bounded. */
async function sendMessage(
  s: Session,
  sync: FakeSync,
  finished: { n: number },
  text: string,
  err?: Error,
): Promise<string> {
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<v@local.test>\r\nDATA\r\n");
  assert.deepEqual(await s.client.replies(3), [
    "250 2.1.0 Sender OK",
    "250 2.1.5 Recipient OK",
    "354 Start mail input; end with <CRLF>.<CRLF>",
  ]);
  await s.client.send(`Subject: ${text}\r\n\r\n${text}\r\n.\r\n`);
  const reply = s.client.reply(5_000);
  const state = track(reply);
  for (let i = 0; i < 200 && state.state === "pending"; i++) {
    await finishStarted(sync, finished, err);
    await new Promise((r) => setTimeout(r, 5));
  }
  return await reply;
}

Deno.test("SMTP: after a failed sync the sender hears 451 4.3.0 for that message and the next, never 250 (#13)", async () => {
  const { store, sync } = failingStore();
  const sink = new QueueSink({
    store,
    isLocalDomain: (d) => d === "local.test",
    log: NULL_LOGGER,
    maxRecipients: 10,
  });
  const s = await startReady({ otherSink: sink });
  const finished = { n: 0 };
  try {
    const ok = await sendMessage(s, sync, finished, "before");
    assert.match(ok, /^250 2\.6\.0 /, "a sync that works acknowledges");
    const failed = await sendMessage(s, sync, finished, "lost", EIO());
    assert.match(failed, /^451 4\.3\.0 /);
    for (const text of ["later", "later still"]) {
      assert.match(await sendMessage(s, sync, finished, text), /^451 4\.3\.0 /);
    }
    assert.equal((await store.list()).length, 1, "only the message acknowledged before");
  } finally {
    await s.end();
    await store.close().catch(() => {});
  }
});

/** How many of this process's descriptors are open on `path`. */
function descriptorsOn(path: string): number {
  const target = Deno.realPathSync(path);
  let n = 0;
  for (const fd of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${fd.name}`) === target) n++;
    } catch {
      // Closed meanwhile (the directory's own descriptor).
    }
  }
  return n;
}

Deno.test("FileWalSync: a descriptor per sync, opened at start, never reopened (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const db = openDatabase(dataDir);
    const wal = `${dataDir}/odmr.db-wal`;
    db.exec("CREATE TABLE t (x)");
    const sqlites = descriptorsOn(wal);
    const sync = new FileWalSync(wal);
    try {
      // A failure is told once per open file description: each sync that may run at once (and
      // the one on the loop) has its own, so none can miss it because another one heard it.
      assert.equal(descriptorsOn(wal), sqlites + MAX_SYNCS + 1);
      const inode = (await Deno.stat(wal)).ino;
      // Another connection (a `queue …` command) comes and goes: the WAL stays the same file.
      const other = new DatabaseSync(`${dataDir}/odmr.db`);
      other.exec("INSERT INTO t VALUES (1)");
      other.close();
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      assert.equal((await Deno.stat(wal)).ino, inode);
      // More syncs at once than descriptors: the rest wait for one, all end.
      db.exec("INSERT INTO t VALUES (2)");
      await Promise.all(Array.from({ length: MAX_SYNCS * 3 }, () => sync.sync()));
      sync.syncNow();
      assert.equal(descriptorsOn(wal), sqlites + MAX_SYNCS + 1);
    } finally {
      sync.close();
    }
    assert.equal(descriptorsOn(wal), sqlites, "close() closes every descriptor");
    await assert.rejects(sync.sync(), /WAL sync after close/, "fails, never waits for ever");
    db.close();
  });
});
