/**
 * A message whose group COMMIT went through but whose WAL sync has not ended is in the database
 * its leases read, yet not on disk and not acknowledged (no 250 yet). A live lease must not hand
 * it out before the sync ends: should the sync fail, its sender hears 4xx and sends it again, and
 * a copy delivered meanwhile would arrive twice. Once the sync ends the lease offers it; if the
 * sync fails the lease leaves it out. Both an ATRN lease and an outbound (mx route) lease, and a
 * message whose rows are still in the open group transaction (its COMMIT a turn later).
 * Faults: a `FakeSync` whose syncs the test finishes.
 */
import assert from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { Lease, QueuedMessage } from "../../src/queue/types.ts";
import { FakeSync, track, turns } from "../_helpers/fake_wal_sync.ts";
import { queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

const ATRN_DOMAIN = "one.test";
const MX_DOMAIN = "far.test";

/** Waits (bounded) until `n` syncs were started. */
async function syncStarted(sync: FakeSync, n: number): Promise<void> {
  for (let i = 0; i < 100 && sync.pending.length < n; i++) await turns(1);
  assert.equal(sync.pending.length, n);
}

interface Fixture {
  readonly store: SqliteQueueStore;
  readonly sync: FakeSync;
  /** On disk before the lease was taken. */
  readonly first: string;
  readonly lease: Lease;
  /** The second message's id and its commit(), whose sync (#1) is still pending. */
  readonly second: string;
  readonly committing: Promise<void>;
}

/** One message on disk, a lease over its domain, then a second one committed but not synced. */
async function leaseThenUnsynced(
  dataDir: string,
  route: "atrn" | "mx",
): Promise<Fixture> {
  const sync = new FakeSync();
  const store = new SqliteQueueStore(openDatabase(dataDir), { walSync: sync });
  const to = route === "atrn" ? `a@${ATRN_DOMAIN}` : `a@${MX_DOMAIN}`;
  const queued = queueMessage(store, { to: [rcpt(to, { route })] });
  await syncStarted(sync, 1);
  sync.finish(0);
  const first = await queued;
  const lease = await claim(store, route);
  const writer = await store.begin({ mailFrom: "", params: {}, recipients: [rcpt(to, { route })] });
  await writer.write(new TextEncoder().encode("Subject: not yet\r\n\r\nbody\r\n"));
  const committing = writer.commit();
  committing.catch(() => {});
  await syncStarted(sync, 2);
  return { store, sync, first, lease, second: writer.id, committing };
}

async function claim(store: SqliteQueueStore, route: "atrn" | "mx"): Promise<Lease> {
  if (route === "mx") {
    const lease = await store.claimOutbound({
      owner: "t",
      leaseSeconds: 60,
      now: Date.now() + 3_600_000,
    });
    assert.ok(lease, "an outbound claim");
    return lease;
  }
  const claimed = await store.claim([ATRN_DOMAIN], { owner: "t", leaseSeconds: 60 });
  if (claimed.kind !== "claimed") throw new Error(`claim: ${claimed.kind}`);
  return claimed.lease;
}

/**
 * Starts `lease`'s listing, checks that `first` (on disk) comes first, and asks for the next one:
 * that request must still be pending after a few turns, as its message's sync has not ended.
 */
async function nextAfterFirst(
  lease: Lease,
  first: string,
): Promise<
  { offered: AsyncIterator<QueuedMessage>; next: Promise<IteratorResult<QueuedMessage>> }
> {
  const offered = lease.messages()[Symbol.asyncIterator]();
  assert.equal((await offered.next()).value?.id, first);
  const next = offered.next();
  const state = track(next);
  await turns(5);
  assert.equal(state.state, "pending", "offered before its COMMIT or its sync had ended");
  return { offered, next };
}

for (const route of ["atrn", "mx"] as const) {
  Deno.test(`a ${route} lease offers a committed message only once its sync has ended (#13)`, async () => {
    await withTempDataDir(async (dataDir) => {
      const f = await leaseThenUnsynced(dataDir, route);
      try {
        const { offered, next } = await nextAfterFirst(f.lease, f.first);
        f.sync.finish(1);
        const r: IteratorResult<QueuedMessage> = await next;
        assert.equal(r.value?.id, f.second);
        await f.committing;
        assert.equal((await offered.next()).done, true);
        await f.lease.release();
      } finally {
        await f.store.close();
      }
    });
  });

  Deno.test(`a ${route} lease never offers a message whose sync failed (#13)`, async () => {
    await withTempDataDir(async (dataDir) => {
      const f = await leaseThenUnsynced(dataDir, route);
      try {
        const { next } = await nextAfterFirst(f.lease, f.first);
        f.sync.finish(1, new Error("EIO"));
        await assert.rejects(f.committing, /Cannot sync queue database: EIO/);
        assert.equal((await next).done, true, "the refused message was offered");
      } finally {
        await assert.rejects(f.store.close(), /EIO/);
      }
    });
  });
}

Deno.test("a lease does not hand out a message whose rows are still in the open transaction, before its COMMIT (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const sync = new FakeSync();
    const store = new SqliteQueueStore(openDatabase(dataDir), { walSync: sync });
    try {
      const to = rcpt(`a@${ATRN_DOMAIN}`);
      const queued = queueMessage(store, { to: [to] });
      await syncStarted(sync, 1);
      sync.finish(0);
      const first = await queued;
      const lease = await claim(store, "atrn");
      const writer = await store.begin({ mailFrom: "", params: {}, recipients: [to] });
      await writer.write(new TextEncoder().encode("Subject: not yet\r\n\r\nbody\r\n"));
      const committing = writer.commit();
      // The same turn: its rows are in the shared transaction, whose COMMIT runs a turn later.
      // Its listing starts in that turn; its COMMIT and its sync start while it waits.
      const { next } = await nextAfterFirst(lease, first);
      await syncStarted(sync, 2);
      sync.finish(1);
      assert.equal((await next).value?.id, writer.id);
      await committing;
      await lease.release();
    } finally {
      await store.close();
    }
  });
});
