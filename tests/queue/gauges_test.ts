/**
 * The queue gauges (`domainStats()`: per route and domain, messages with a waiting recipient
 * there, their bytes, the oldest) follow every change the sessions and the commands make, with
 * the same answers on SQLite (trigger-kept counters) and PostgreSQL (trigger-appended deltas
 * folded at each read, src/queue/pg/_gauges.ts), and PostgreSQL's hourly recount repairs a
 * count that went wrong (#14).
 */
import assert from "node:assert/strict";
import { SqliteQueueAdmin } from "../../src/queue/admin.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { PgQueueAdmin } from "../../src/queue/pg/admin.ts";
import { connectPostgres } from "../../src/queue/pg/connect.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { QueueAdmin } from "../../src/queue/admin.ts";
import type { QueueStore } from "../../src/queue/types.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;
const A = { owner: "session-a", leaseSeconds: 60 };

interface Clock {
  ms: number;
}

type Opener = (
  clock: Clock,
  fn: (store: QueueStore, admin: QueueAdmin) => Promise<void>,
) => Promise<void>;

/** Puts a message of `size` bytes one second after the last; returns its id. */
function put(store: QueueStore, clock: Clock, to: string[], size: number): Promise<string> {
  clock.ms += 1000;
  return queueMessage(store, { from: "s@example.net", to, body: new Uint8Array(size).fill(0x41) });
}

/** `domain messages bytes oldest-offset` lines, sorted, for compact assertions. */
async function gauges(store: QueueStore): Promise<string[]> {
  return (await store.domainStats()).map((s) =>
    `${s.route} ${s.domain} ${s.messages} ${s.bytes} ${(s.oldestReceivedAt - T0) / 1000}`
  );
}

/** Settles `addresses` of message `id` with `outcome` through a lease on their domain. */
async function settle(
  store: QueueStore,
  id: string,
  addresses: string[],
  outcome: "delivered" | "failed",
): Promise<void> {
  const domains = [...new Set(addresses.map((a) => a.slice(a.indexOf("@") + 1)))];
  const claim = await store.claim(domains, A);
  assert.equal(claim.kind, "claimed");
  if (claim.kind !== "claimed") return;
  const m = await store.get(id);
  await claim.lease.settle(
    (m?.recipients ?? []).filter((r) => addresses.includes(r.address))
      .map((r) => ({ recipientId: r.id, messageId: id, outcome, reply: `${outcome} in test` })),
  );
  await claim.lease.release();
}

async function cases(t: Deno.TestContext, open: Opener): Promise<void> {
  await t.step("every change moves the gauges as a recount would", async () => {
    const clock = { ms: T0 };
    await open(clock, async (store, admin) => {
      assert.deepEqual(await gauges(store), []);
      // Two recipients of one message in one domain, written in one statement: counted once.
      const m1 = await put(store, clock, ["a@one.test", "b@one.test", "c@two.test"], 100);
      const m2 = await put(store, clock, ["d@one.test"], 10);
      const m3 = await put(store, clock, ["e@two.test", "f@three.test"], 1);
      assert.deepEqual(await gauges(store), [
        "atrn one.test 2 110 1",
        "atrn three.test 1 1 3",
        "atrn two.test 2 101 1",
      ]);
      // One of two recipients in the domain delivered: the message still waits there.
      await settle(store, m1, ["a@one.test"], "delivered");
      assert.deepEqual((await gauges(store))[0], "atrn one.test 2 110 1");
      // The other one and m2's together, in one settlement: both messages leave one.test.
      const claim = await store.claim(["one.test"], A);
      assert.equal(claim.kind, "claimed");
      if (claim.kind === "claimed") {
        const of = async (id: string) =>
          ((await store.get(id))?.recipients ?? []).filter((r) => r.domain === "one.test")
            .map((r) => ({
              recipientId: r.id,
              messageId: id,
              outcome: "delivered" as const,
              reply: "250",
            }));
        const ids = [...await of(m1), ...await of(m2)];
        await claim.lease.settle(ids);
        await claim.lease.release();
      }
      assert.deepEqual(await gauges(store), ["atrn three.test 1 1 3", "atrn two.test 2 101 1"]);
      // Failed recipients do not wait; requeued ones wait again.
      await settle(store, m1, ["c@two.test"], "failed");
      await settle(store, m3, ["e@two.test"], "failed");
      assert.deepEqual(await gauges(store), ["atrn three.test 1 1 3"]);
      const requeued = await admin.requeue({ kind: "domain", domain: "two.test" });
      assert.equal(requeued.recipients, 2);
      assert.deepEqual(await gauges(store), ["atrn three.test 1 1 3", "atrn two.test 2 101 1"]);
      // A deleted message leaves every domain it waited in.
      assert.equal(await store.delete([m3]), 1);
      assert.deepEqual(await gauges(store), ["atrn two.test 1 100 1"]);
      assert.equal(await store.deleteDomain("two.test"), 1);
      assert.deepEqual(await gauges(store), []);
    });
  });
}

Deno.test("queue gauges: SQLite", async (t) => {
  await cases(t, async (clock, fn) => {
    await withTempDataDir(async (dataDir) => {
      const db = openDatabase(dataDir);
      const store = new SqliteQueueStore(db, { now: () => clock.ms });
      try {
        await fn(store, new SqliteQueueAdmin(db));
      } finally {
        await store.close();
      }
    });
  });
});

let databases = 0;

await postgresTest("queue gauges: PostgreSQL", async (pg, t) => {
  await cases(t, async (clock, fn) => {
    const url = await pg.createDatabase(`gauges_${++databases}`);
    const store = await PgQueueStore.open({ url }, { nodeId: "node-a", now: () => clock.ms });
    const admin = await PgQueueAdmin.open({ url });
    try {
      await fn(store, admin);
    } finally {
      await admin.close();
      await store.close();
    }
  });

  await t.step("a count gone wrong is put right by the hourly recount", async () => {
    const clock = { ms: T0 };
    const url = await pg.createDatabase(`gauges_${++databases}`);
    const store = await PgQueueStore.open({ url }, { nodeId: "node-a", now: () => clock.ms });
    const sql = await connectPostgres({ url, max: 1 });
    try {
      await put(store, clock, ["a@one.test"], 10);
      assert.deepEqual(await gauges(store), ["atrn one.test 1 10 1"]);
      // A delta that no change made (what two racing transactions could leave).
      await sql`INSERT INTO waiting_deltas (route, domain, messages, bytes)
        VALUES ('atrn', 'one.test', 1, 10)`;
      assert.deepEqual(await gauges(store), ["atrn one.test 2 20 1"], "folded, not recounted");
      clock.ms += HOUR - 1000;
      assert.deepEqual(await gauges(store), ["atrn one.test 2 20 1"], "an hour minus a tick");
      clock.ms += 1000;
      assert.deepEqual(await gauges(store), ["atrn one.test 1 10 1"], "recounted at one hour");
      const [rows] = await sql`SELECT count(*)::int AS n FROM waiting_deltas`;
      assert.equal(rows?.n, 1, "one row per domain after a read");
    } finally {
      await sql.end({ timeout: 1 });
      await store.close();
    }
  });
});
