/**
 * The PostgreSQL store's calls past their deadline (src/queue/pg/_deadline.ts): the server
 * ends a statement that would miss it (`statement_timeout` on the pool of deadline-bound
 * calls), the client sends no CancelRequest. With one (b82dd2a), customer X's drain was handed
 * customer Y's message body, and a CancelRequest the server refused (PostgreSQL down) was an
 * unhandled rejection that ended the process. A statement is made slow by a row lock another
 * session holds.
 */
import assert from "node:assert/strict";
import net from "node:net";
import postgres from "postgres";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import type { ClaimResult, Lease } from "../../src/queue/types.ts";
import { DEADLINE_MS, shortDeadlineTest, STEP_BOUND_MS } from "../_helpers/pg_short_deadline.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";
import { answerWithin, until } from "../_helpers/wait_until.ts";

const leaseOf = (c: ClaimResult): Lease => {
  assert.equal(c.kind, "claimed");
  return (c as Extract<ClaimResult, { kind: "claimed" }>).lease;
};

async function body(lease: Lease, id: string): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const b of lease.readBody(id)) parts.push(b);
  return new TextDecoder().decode(new Uint8Array(parts.flatMap((p) => [...p])));
}

/** Holds the row of `domain` in domain_leases (FOR UPDATE) until `unlock()`. */
async function lockLease(sql: postgres.Sql, domain: string) {
  const locked = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const held = sql.begin(async (tx) => {
    await tx`SELECT 1 FROM domain_leases WHERE domain = ${domain} FOR UPDATE`;
    locked.resolve();
    await release.promise;
  }).catch(() => {});
  await locked.promise;
  return {
    unlock: async () => {
      release.resolve();
      await held;
    },
  };
}

await shortDeadlineTest(
  "two drains on one busy connection: customer X's body read never gets customer Y's body",
  { db: "deadline_body_leak", max: 1 },
  async ({ store, url }) => {
    const locker = postgres(url, { max: 1, onnotice: () => {} });
    let unlock = () => Promise.resolve();
    try {
      const idX = await queueMessage(store, {
        from: "a@example.net",
        to: ["u@x.example"],
        body: "Subject: for X\r\n\r\nbody of X's message\r\n",
      });
      const idY = await queueMessage(store, {
        from: "a@example.net",
        to: ["v@y.example"],
        body: "Subject: for Y only\r\n\r\nY's private body\r\n",
      });
      const x = leaseOf(await store.claim(["x.example"], { owner: "sx", leaseSeconds: 600 }));
      const y = leaseOf(await store.claim(["y.example"], { owner: "sy", leaseSeconds: 600 }));
      // A running node has its statements prepared (postgres.js pipelines them from then).
      assert.equal(await x.renew(), true);
      assert.match(await body(x, idX), /body of X's message/);
      assert.match(await body(y, idY), /Y's private body/);
      // X's renewal waits for the lock; Y's read is pipelined behind it and passes its
      // deadline; X's read, asked later, is behind Y's.
      ({ unlock } = await lockLease(locker, "x.example"));
      const renewal = x.renew().then((ok) => `renewed ${ok}`, (e) => `renewal failed: ${e}`);
      const yRead = body(y, idY).then((b) => `Y read: ${b}`, (e) => `Y read failed: ${e}`);
      await new Promise((r) => setTimeout(r, 100));
      const xRead = body(x, idX).then((b) => `X read: ${b}`, (e) => `X read failed: ${e}`);
      const [, yGot, xGot] = await Promise.all(
        [renewal, yRead, xRead].map((p) => answerWithin(p, STEP_BOUND_MS)),
      );
      // Before: "X read: Subject: for Y only ... Y's private body".
      assert.doesNotMatch(xGot!, /private/, "X's drain was handed Y's message body");
      assert.match(xGot!, /^(X read: Subject: for X\r\n\r\nbody of X's message|X read failed)/);
      assert.match(yGot!, /^(Y read: Subject: for Y only|Y read failed)/);
    } finally {
      await unlock();
      await locker.end({ timeout: 1 });
    }
  },
);

await shortDeadlineTest(
  "a call stuck on a lock is ended by the server (statement_timeout just below its deadline)",
  { db: "deadline_statement_timeout" },
  async ({ store, url }) => {
    const locker = postgres(url, { max: 1, onnotice: () => {} });
    const watcher = postgres(url, { max: 1, onnotice: () => {} });
    let unlock = () => Promise.resolve();
    try {
      const [main] = await store.pool`SHOW statement_timeout`;
      assert.equal(main?.statement_timeout, "450ms");
      await queueMessage(store, { from: "a@example.net", to: ["u@x.example"] });
      const x = leaseOf(await store.claim(["x.example"], { owner: "sx", leaseSeconds: 600 }));
      ({ unlock } = await lockLease(locker, "x.example"));
      const renewal = await answerWithin(
        x.renew().then((ok) => `renewed ${ok}`, (e) => `renewal failed: ${e}`),
        STEP_BOUND_MS,
      );
      assert.match(renewal, /^renewal failed: /);
      // The lock is still held, and no session of the store waits for it any more: the server
      // ended the renewal's statement (no client-side CancelRequest ever does it now).
      await until("the renewal's statement ended by the server", async () => {
        const waiting = await watcher`SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = 'odmr-relay' AND wait_event_type = 'Lock'`;
        return waiting[0]?.n === 0;
      }, STEP_BOUND_MS);
    } finally {
      await unlock();
      await locker.end({ timeout: 1 });
      await watcher.end({ timeout: 1 });
    }
  },
);

await postgresTest(
  "migrations are not bounded by the statement timeout: a node waiting past the deadline for another's migration opens",
  async (pg, t) => {
    // The calls' deadline, and the long calls' (the pool migrations run on has its statement
    // timeout: the wait for the lock is told the migrations' own bound instead).
    for (const deadline of ["callDeadlineMs", "longDeadlineMs"] as const) {
      await t.step(`a short ${deadline}`, async () => {
        const url = await pg.createDatabase(`deadline_migration_wait_${deadline.toLowerCase()}`);
        const other = postgres(url, { max: 1, onnotice: () => {} });
        try {
          // Another node migrating: it holds the migration lock (schema.ts, "odmr").
          const held = await other.reserve();
          await held`SELECT pg_advisory_lock(${0x6f646d72})`;
          let store: PgQueueStore | undefined;
          const opening = PgQueueStore.open({ url }, { nodeId: "n1", [deadline]: DEADLINE_MS })
            .then((s) => (store = s, "opened"), (e) => `failed: ${e}`);
          // Released only after several times the deadline (the open waits for it, not racing).
          await new Promise((r) => setTimeout(r, 4 * DEADLINE_MS));
          await held`SELECT pg_advisory_unlock(${0x6f646d72})`;
          held.release();
          assert.equal(await answerWithin(opening, STEP_BOUND_MS), "opened");
          await store?.close();
        } finally {
          await other.end({ timeout: 1 });
        }
      });
    }
  },
);

/** A proxy to PostgreSQL whose connections can all go silent while it stops accepting. */
async function startDyingProxy(pgPort: number) {
  const pairs: { client: net.Socket; upstream: net.Socket; silent: boolean }[] = [];
  let closedClients = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(pgPort, "127.0.0.1");
    const pair = { client, upstream, silent: false };
    pairs.push(pair);
    client.on("error", () => {});
    upstream.on("error", () => {});
    client.on("close", () => closedClients++);
    client.on("data", (b: Uint8Array) => pair.silent || upstream.write(b));
    upstream.on("data", (b: Uint8Array) => pair.silent || client.write(b));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    via(url: string): string {
      const u = new URL(url);
      u.port = String(port);
      return u.toString();
    },
    /** Established connections go silent, new ones are refused (PostgreSQL's host down). */
    die(): void {
      for (const p of pairs) p.silent = true;
      server.close();
    },
    get closedClients(): number {
      return closedClients;
    },
    close(): void {
      for (const p of pairs) p.client.destroy(), p.upstream.destroy();
      server.close();
    },
  };
}

await postgresTest(
  "PostgreSQL refusing connections while a call is past its deadline: the call fails, the process goes on",
  async (pg) => {
    const url = await pg.createDatabase("deadline_refused");
    const proxy = await startDyingProxy(pg.port);
    const unhandled: string[] = [];
    const onUnhandled = (e: PromiseRejectionEvent) => {
      e.preventDefault();
      unhandled.push(String(e.reason));
    };
    globalThis.addEventListener("unhandledrejection", onUnhandled);
    const store = await PgQueueStore.open({ url: proxy.via(url) }, {
      nodeId: "n1",
      callDeadlineMs: DEADLINE_MS,
    });
    try {
      await queueMessage(store, {
        from: "s@example.net",
        to: [rcpt("v@dest.example", { route: "mx" })],
      });
      proxy.die();
      const got = await answerWithin(
        store.claimOutbound({ owner: "w", leaseSeconds: 600, now: Date.now() }).then(
          (l) => `claimed ${l?.domains}`,
          (e) => `claim failed: ${e.message}`,
        ),
        STEP_BOUND_MS,
      );
      assert.match(got, /^claim failed: outbound claim: no answer from PostgreSQL within 500 ms/);
      // The silent connection is dropped after the grace; by then a CancelRequest would have
      // been refused long since (before: an unhandled ECONNREFUSED, which ends a Deno process).
      await until("the silent connection dropped", () => proxy.closedClients > 0, STEP_BOUND_MS);
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(unhandled, []);
    } finally {
      proxy.close();
      await store.close();
      globalThis.removeEventListener("unhandledrejection", onUnhandled);
    }
  },
);
