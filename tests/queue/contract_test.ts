/**
 * The QueueStore contract, one suite run against both backends: SQLite (a temp data_dir) and
 * PostgreSQL (a private cluster, a fresh database per case). What sessions, the drain,
 * maintenance and the commands rely on, whatever the backend.
 */
import assert from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { EXPIRED_GRACE_MS } from "../../src/queue/_maintenance.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { Lease, QueueStore } from "../../src/queue/types.ts";
import { type PostgresCluster, postgresTest } from "../_helpers/postgres.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { outboundContract, type OutboundOpener } from "./_outbound_contract.ts";
import { outboundMaintenanceContract } from "./_outbound_maintenance_contract.ts";
import { reportPendingContract } from "./_report_pending_contract.ts";
import {
  failEveryOther,
  maintenanceOptions,
  queueMessage,
  rcpt,
} from "../_helpers/queue_fixtures.ts";

const T0 = 1_700_000_000_000;
const DAY = 86_400_000;
const A = { owner: "session-a", leaseSeconds: 60 };
const B = { owner: "session-b", leaseSeconds: 60 };

interface Clock {
  ms: number;
}

/** Opens a fresh, empty store of one backend whose clock starts at T0; closes and removes it after `fn`. */
type Opener = (
  fn: (store: QueueStore, clock: Clock, commits: () => number) => Promise<void>,
) => Promise<void>;

/** Queues a message to `addresses`, received one second after the previous one. */
function put(
  store: QueueStore,
  clock: Clock,
  addresses: readonly string[],
  opts: { from?: string; body?: Uint8Array } = {},
): Promise<string> {
  clock.ms += 1000;
  return queueMessage(store, { ...opts, to: addresses });
}

function leaseOf(result: Awaited<ReturnType<QueueStore["claim"]>>): Lease {
  if (result.kind !== "claimed") throw new Error(`claim was ${result.kind}`);
  return result.lease;
}

/** Every case of the contract, as steps of one test. */
async function contract(t: Deno.TestContext, open: Opener): Promise<void> {
  await t.step("a multi-chunk binary body comes back byte-exact, with its envelope", async () => {
    await open(async (store) => {
      const body = new Uint8Array(150 * 1024 + 3);
      for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 9)) & 0xff;
      const writer = await store.begin({
        mailFrom: "s@example.net",
        params: { body: "8BITMIME" },
        recipients: [rcpt("a@one.test"), rcpt("b@two.test", { notify: "NEVER" })],
      });
      const scratch = new Uint8Array(10_000);
      for (let at = 0; at < body.length; at += 10_000) {
        const piece = body.subarray(at, Math.min(at + 10_000, body.length));
        scratch.set(piece);
        await writer.write(scratch.subarray(0, piece.length));
        scratch.fill(0); // the writer must have copied what it keeps
      }
      await writer.commit();
      assert.deepEqual(await collectBytes(store.readBody(writer.id)), body);
      const got = await store.get(writer.id);
      assert.equal(got?.size, body.length);
      assert.equal(got?.mailFrom, "s@example.net");
      assert.deepEqual(got?.params, { body: "8BITMIME" });
      assert.deepEqual(
        got?.recipients.map((r) => [r.address, r.domain, r.status, r.notify]),
        [["a@one.test", "one.test", "queued", undefined], [
          "b@two.test",
          "two.test",
          "queued",
          "NEVER",
        ]],
      );
    });
  });

  await t.step("an aborted message leaves nothing visible", async () => {
    await open(async (store) => {
      const w = await store.begin({ mailFrom: "", params: {}, recipients: [rcpt("a@one.test")] });
      await w.write(new Uint8Array(100_000));
      await w.abort();
      assert.equal(await store.get(w.id), undefined);
      assert.deepEqual(await store.list(), []);
    });
  });

  await t.step("concurrent commits share group commits and each is durable", async () => {
    await open(async (store, _clock, commits) => {
      const writers = await Promise.all(
        Array.from(
          { length: 20 },
          () => store.begin({ mailFrom: "", params: {}, recipients: [rcpt("a@one.test")] }),
        ),
      );
      await Promise.all(writers.map((w) => w.write(new TextEncoder().encode("x\r\n"))));
      await Promise.all(writers.map((w) => w.commit()));
      assert.equal((await store.list()).length, 20);
      assert.ok(commits() < 20, `20 messages took ${commits()} commits`);
    });
  });

  await t.step(
    "claim: empty, all-or-nothing busy, taken over after expiry (N vs N+1 ms)",
    async () => {
      await open(async (store, clock) => {
        await put(store, clock, ["a@one.test"]);
        await put(store, clock, ["b@two.test"]);
        assert.deepEqual(await store.claim(["none.test"], A), { kind: "empty" });
        const a = leaseOf(await store.claim(["two.test"], A));
        assert.deepEqual(await store.claim(["one.test", "two.test"], B), {
          kind: "busy",
          domain: "two.test",
        });
        // one.test was not leased by the refused claim.
        await leaseOf(await store.claim(["one.test"], A)).release();
        clock.ms += 59_999;
        assert.equal((await store.claim(["two.test"], B)).kind, "busy", "1 ms before expiry");
        clock.ms += 1;
        const b = leaseOf(await store.claim(["two.test"], B));
        assert.equal(await a.renew(), false, "A lost its lease to B");
        assert.equal(await b.renew(), true);
        await b.release();
        await a.release(); // releasing a lost lease does not drop B's successor
        assert.equal((await store.claim(["two.test"], A)).kind, "claimed");
      });
    },
  );

  await t.step(
    "a lease lists only queued recipients of its domains, oldest first, paged",
    async () => {
      await open(async (store, clock) => {
        const want: string[] = [];
        for (let i = 0; i < 230; i++) {
          const id = await put(store, clock, [`u${i}@one.test`, `x${i}@other.test`]);
          if (i % 2 === 0) want.push(id);
          else await put(store, clock, [`y${i}@other.test`]);
        }
        // Every other one.test message: its recipient failed, so only the even ones are offered.
        const first = leaseOf(await store.claim(["one.test"], A));
        await failEveryOther(first, 1);
        await first.release();
        const lease = leaseOf(await store.claim(["one.test"], A));
        const got = await Array.fromAsync(lease.messages());
        assert.equal(got.length, 115);
        assert.ok(got.every((m) => m.recipients.every((r) => r.domain === "one.test")));
        assert.ok(got.every((m) => m.recipients.every((r) => r.status === "delivering")));
        assert.deepEqual(got.map((m) => m.id), [...got.map((m) => m.id)].sort());
        await lease.release();
      });
    },
  );

  await t.step(
    "settle: delivered leaves, deferred stays queued, failed is not offered again",
    async () => {
      await open(async (store, clock) => {
        const id = await put(store, clock, ["a@one.test", "b@one.test", "c@one.test"]);
        const lease = leaseOf(await store.claim(["one.test"], A));
        const [m] = await Array.fromAsync(lease.messages());
        const [ra, rb, rc] = m?.recipients ?? [];
        assert.ok(ra && rb && rc);
        await Promise.all([
          lease.settle([{
            recipientId: ra.id,
            messageId: id,
            outcome: "delivered",
            reply: "250 ok",
          }]),
          lease.settle([{
            recipientId: rb.id,
            messageId: id,
            outcome: "deferred",
            reply: "451 later",
          }]),
          lease.settle([{ recipientId: rc.id, messageId: id, outcome: "failed", reply: "550 no" }]),
        ]);
        // Idempotent: settling a delivered recipient again changes nothing.
        await lease.settle([{
          recipientId: ra.id,
          messageId: id,
          outcome: "delivered",
          reply: "250 ok",
        }]);
        await lease.release();
        assert.deepEqual(
          (await store.get(id))?.recipients.map((r) => [r.address, r.status, r.lastReply]),
          [["b@one.test", "queued", "451 later"], ["c@one.test", "failed", "550 no"]],
        );
        const next = leaseOf(await store.claim(["one.test"], B));
        const again = await Array.fromAsync(next.messages());
        assert.deepEqual(again[0]?.recipients.map((r) => r.address), ["b@one.test"]);
        await next.settle([{
          recipientId: again[0]?.recipients[0]?.id ?? 0,
          messageId: id,
          outcome: "delivered",
          reply: "250",
        }]);
        await next.release();
        // Only the failed one is left; when it goes too, the message and its body go.
        assert.equal((await store.claim(["one.test"], A)).kind, "empty");
        assert.equal(await store.deleteDomain("one.test"), 1);
        assert.equal(await store.get(id), undefined);
        // A gone message has no body to read: an error, never an empty body sent (#13).
        await assert.rejects(collectBytes(store.readBody(id)), /no such message/);
      });
    },
  );

  await t.step(
    "one settle call over many messages: only those left without a recipient go, counters follow (#13)",
    async () => {
      await open(async (store, clock) => {
        const size = new TextEncoder().encode("Subject: t\r\n\r\nbody\r\n").length;
        const both = await put(store, clock, ["a@one.test", "b@one.test"]);
        const deferred = await put(store, clock, ["c@one.test", "d@one.test"]);
        const failed = await put(store, clock, ["e@one.test", "f@one.test"]);
        const other = await put(store, clock, ["g@one.test", "h@two.test"]);
        const lone = await put(store, clock, ["i@one.test"]);
        const lease = leaseOf(await store.claim(["one.test"], A));
        const got = await Array.fromAsync(lease.messages());
        const named = (address: string) => {
          const m = got.find((g) => g.recipients.some((r) => r.address === address));
          const recipientId = m?.recipients.find((r) => r.address === address)?.id ?? 0;
          return { recipientId, messageId: m?.id ?? "" };
        };
        const ok = "250 ok";
        await lease.settle([
          { ...named("a@one.test"), outcome: "delivered", reply: ok },
          { ...named("c@one.test"), outcome: "delivered", reply: ok },
          { ...named("d@one.test"), outcome: "deferred", reply: "451 later" },
          { ...named("e@one.test"), outcome: "failed", reply: "550 no" },
          { ...named("f@one.test"), outcome: "delivered", reply: ok },
          { ...named("g@one.test"), outcome: "delivered", reply: ok },
          { ...named("b@one.test"), outcome: "delivered", reply: ok },
          { ...named("i@one.test"), outcome: "delivered", reply: ok },
        ]);
        await lease.release();
        const left = async (m: string) =>
          (await store.get(m))?.recipients.map((r) => `${r.address}:${r.status}`);
        assert.equal(await left(both), undefined);
        assert.equal(await left(lone), undefined);
        await assert.rejects(collectBytes(store.readBody(both)), /no such message/);
        assert.deepEqual(await left(deferred), ["d@one.test:queued"]);
        assert.deepEqual(await left(failed), ["e@one.test:failed"]);
        assert.deepEqual(await left(other), ["h@two.test:queued"]);
        assert.equal((await collectBytes(store.readBody(other))).length, size);
        // Quota: the messages still holding a one.test recipient; gauges: those still waiting.
        assert.deepEqual(await store.usage("one.test"), { messages: 2, bytes: 2 * size });
        assert.deepEqual(
          (await store.domainStats()).map((s) => [s.domain, s.messages, s.bytes]),
          [["one.test", 1, size], ["two.test", 1, size]],
        );
      });
    },
  );

  await t.step("list shows delivering while leased; --domain shows that domain only", async () => {
    await open(async (store, clock) => {
      const m1 = await put(store, clock, ["a@one.test", "b@two.test"]);
      await put(store, clock, ["c@two.test"]);
      const lease = leaseOf(await store.claim(["two.test"], A));
      assert.deepEqual(
        (await store.list({ domain: "one.test" })).map((m) => [
          m.id,
          m.recipients.map((r) => r.address),
        ]),
        [[m1, ["a@one.test"]]],
      );
      assert.deepEqual(
        (await store.list()).flatMap((m) => m.recipients.map((r) => `${r.address}:${r.status}`)),
        ["a@one.test:queued", "b@two.test:delivering", "c@two.test:delivering"],
      );
      await lease.release();
    });
  });

  await t.step("delete and deleteDomain count what existed", async () => {
    await open(async (store, clock) => {
      const m1 = await put(store, clock, ["a@one.test", "b@two.test"]);
      const m2 = await put(store, clock, ["c@two.test"]);
      assert.equal(await store.deleteDomain("two.test"), 2);
      assert.equal(await store.get(m2), undefined);
      assert.equal(await store.delete([m1, m2, "NOSUCHMESSAGE0"]), 1);
      assert.deepEqual(await store.list(), []);
    });
  });

  await t.step("usage and domainStats count each message once per domain", async () => {
    await open(async (store, clock) => {
      const size = new TextEncoder().encode("Subject: t\r\n\r\nbody\r\n").length;
      await put(store, clock, ["a@one.test", "b@one.test", "c@two.test"]);
      await put(store, clock, ["d@two.test"]);
      assert.deepEqual(await store.usage("two.test"), { messages: 2, bytes: 2 * size });
      assert.deepEqual(await store.usage("none.test"), { messages: 0, bytes: 0 });
      assert.deepEqual(await store.domainStats(), [
        {
          domain: "one.test",
          route: "atrn",
          messages: 1,
          bytes: size,
          oldestReceivedAt: T0 + 1000,
        },
        {
          domain: "two.test",
          route: "atrn",
          messages: 2,
          bytes: 2 * size,
          oldestReceivedAt: T0 + 1000,
        },
      ]);
    });
  });

  await t.step(
    "maintenance expires at max_age + 1 ms, queues a DSN to a local sender, removes after the grace",
    async () => {
      await open(async (store, clock) => {
        const options = maintenanceOptions({
          maxAgeMs: () => DAY,
          isLocalDomain: (d) => d === "local.test",
        });
        const id = await put(store, clock, ["u@one.test"], { from: "s@local.test" });
        clock.ms += DAY;
        assert.equal((await store.maintain(options)).expiredRecipients, 0, "exactly max_age");
        clock.ms += 1;
        const report = await store.maintain(options);
        assert.equal(report.expiredRecipients, 1);
        assert.equal(report.dsnQueued, 1);
        assert.deepEqual((await store.get(id))?.recipients.map((r) => r.status), ["expired"]);
        const dsn = (await store.list({ domain: "local.test" }))[0];
        assert.equal(dsn?.mailFrom, "");
        assert.deepEqual(dsn?.recipients.map((r) => r.address), ["s@local.test"]);
        assert.match(
          new TextDecoder().decode(await collectBytes(store.readBody(dsn?.id ?? ""))),
          /5\.4\.7/,
        );
        clock.ms += EXPIRED_GRACE_MS;
        assert.equal((await store.maintain(options)).removedRecipients, 1);
        assert.equal(await store.get(id), undefined);
      });
    },
  );

  await t.step("releaseAllLeases frees what a previous process left; ping answers", async () => {
    await open(async (store, clock) => {
      await put(store, clock, ["a@one.test"]);
      leaseOf(await store.claim(["one.test"], A)); // never released: a crash
      assert.equal((await store.claim(["one.test"], B)).kind, "busy");
      assert.equal(await store.releaseAllLeases(), 1);
      assert.equal((await store.claim(["one.test"], B)).kind, "claimed");
      await store.ping();
    });
  });
}

/** SQLite stores in a temp data_dir; a restart closes the store and opens the same file. */
const sqliteOpener: OutboundOpener = async (fn) => {
  const clock = { ms: T0 };
  await withTempDataDir(async (dataDir) => {
    const openOne = () => new SqliteQueueStore(openDatabase(dataDir), { now: () => clock.ms });
    let store = openOne();
    try {
      await fn(store, clock, async () => {
        await store.close();
        store = openOne();
        return store;
      });
    } finally {
      await store.close();
    }
  });
};

Deno.test("QueueStore contract: SQLite", async (t) => {
  await contract(t, async (fn) => {
    const clock = { ms: T0 };
    await withTempDataDir(async (dataDir) => {
      let commits = 0;
      const store = new SqliteQueueStore(openDatabase(dataDir), {
        now: () => clock.ms,
        onGroupCommit: () => commits++,
      });
      try {
        await fn(store, clock, () => commits);
      } finally {
        await store.close();
      }
    });
  });
  await outboundContract(t, sqliteOpener);
  await outboundMaintenanceContract(t, sqliteOpener);
  await reportPendingContract(t, sqliteOpener);
});

let databases = 0;

/** Opens a PgQueueStore on a fresh database of `pg`. */
export async function openPgStore(
  pg: PostgresCluster,
  clock: Clock,
  opts: { nodeId?: string; onGroupCommit?: () => void } = {},
): Promise<PgQueueStore> {
  const url = await pg.createDatabase(`contract_${++databases}`);
  return await PgQueueStore.open({ url }, {
    nodeId: opts.nodeId ?? "node-a",
    now: () => clock.ms,
    // Lease expiry is stepped by the millisecond here: leases on this clock, not the database's.
    leaseClock: () => clock.ms,
    ...(opts.onGroupCommit === undefined ? {} : { onGroupCommit: opts.onGroupCommit }),
  });
}

await postgresTest("QueueStore contract: PostgreSQL", async (pg, t) => {
  await contract(t, async (fn) => {
    const clock = { ms: T0 };
    let commits = 0;
    const store = await openPgStore(pg, clock, { onGroupCommit: () => commits++ });
    try {
      await fn(store, clock, () => commits);
    } finally {
      await store.close();
    }
  });
  // A restart: the same database, a new store of the same node.
  const pgOpener: OutboundOpener = async (fn) => {
    const clock = { ms: T0 };
    const url = await pg.createDatabase(`contract_${++databases}`);
    const openOne = () =>
      PgQueueStore.open({ url }, {
        nodeId: "node-a",
        now: () => clock.ms,
        leaseClock: () => clock.ms,
      });
    let store = await openOne();
    try {
      await fn(store, clock, async () => {
        await store.close();
        store = await openOne();
        return store;
      });
    } finally {
      await store.close();
    }
  };
  await outboundContract(t, pgOpener);
  await outboundMaintenanceContract(t, pgOpener);
  await reportPendingContract(t, pgOpener);
});
