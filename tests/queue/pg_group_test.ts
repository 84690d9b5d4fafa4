/**
 * The PostgreSQL group commit (src/queue/pg/_group.ts) while the database is away (#14), on a
 * stand-in pool whose transactions fail, hang or succeed as each test says: a session's write
 * must settle in bounded time (the outage test saw three SMTP sessions get no reply in 30 s).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import type { Sql, Tx } from "../../src/queue/pg/connect.ts";
import { PgGroupCommit } from "../../src/queue/pg/_group.ts";

/** A pool whose `begin(fn)` runs `transaction(fn)`, counting the transactions. */
function standInPool(transaction: (fn: (tx: Tx) => Promise<unknown>) => Promise<unknown>) {
  const pool = { begins: 0, sql: undefined as unknown as Sql };
  pool.sql = {
    begin: (fn: (tx: Tx) => Promise<unknown>) => {
      pool.begins++;
      return transaction(fn);
    },
  } as unknown as Sql;
  return pool;
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How postgres.js, the socket and the server report a connection that went away. */
const LOST: Record<string, () => Error> = {
  "postgres.js CONNECTION_CLOSED": () =>
    Object.assign(new Error("write CONNECTION_CLOSED 127.0.0.1:5432"), {
      code: "CONNECTION_CLOSED",
    }),
  "socket ECONNRESET": () =>
    Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET", syscall: "read" }),
  "server 57P01": () =>
    new postgres.PostgresError({
      message: "terminating connection due to administrator command",
      code: "57P01",
    } as never),
};

for (const [kind, lost] of Object.entries(LOST)) {
  Deno.test(`a group that lost its connection (${kind}) fails all its writes at once, not one transaction per write in turn (#14)`, async () => {
    // Each transaction waits (the pool's reconnect backoff, then a refused connect) and fails.
    const pool = standInPool(async () => {
      await tick(20);
      throw lost();
    });
    const group = new PgGroupCommit(pool.sql, () => {}, 5000);
    const outcomes = await Promise.allSettled([1, 2, 3, 4].map(() => group.run(() => tick(0))));
    assert.equal(pool.begins, 1, "one transaction for the group, no retry of each write");
    for (const o of outcomes) {
      assert.equal(o.status, "rejected");
      assert.equal(String((o as PromiseRejectedResult).reason), String(lost()));
    }
  });
}

for (const code of ["23505", "57014"]) {
  Deno.test(`a group that failed on one write's statement (${code}) still retries each write alone (#14)`, async () => {
    const pool = standInPool((fn) => fn({} as Tx));
    const group = new PgGroupCommit(pool.sql, () => {}, 5000);
    // 23505 a duplicate key; 57014 a statement cancelled (statement_timeout): one write's own.
    const bad = () =>
      Promise.reject(new postgres.PostgresError({ message: "one write's", code } as never));
    const outcomes = await Promise.allSettled([
      group.run(() => tick(0)),
      group.run(bad),
      group.run(() => tick(0)),
    ]);
    assert.deepEqual(outcomes.map((o) => o.status), ["fulfilled", "rejected", "fulfilled"]);
    assert.equal(pool.begins, 4, "the group, then each of its three writes alone");
  });
}

Deno.test("a write settles within its deadline when its transaction never answers, and the next group does not wait for that one (#14)", async () => {
  let isAnswering = false;
  const pool = standInPool((fn) => isAnswering ? fn({} as Tx) : new Promise(() => {}));
  const deadlineMs = 200;
  const group = new PgGroupCommit(pool.sql, () => {}, deadlineMs);
  const started = performance.now();
  const hung = await group.run(() => tick(0)).then(() => "committed", (err) => String(err));
  const waited = performance.now() - started;
  assert.match(hung, /no COMMIT within 200 ms/);
  assert.ok(waited < deadlineMs + 1000, `settled after ${Math.round(waited)} ms`);
  // The database answers again; the first transaction still never will.
  isAnswering = true;
  const next = await Promise.race([
    group.run(() => tick(0)).then(() => "committed", (err) => String(err)),
    tick(3000).then(() => "still waiting after 3 s"),
  ]);
  assert.equal(next, "committed");
  assert.equal(pool.begins, 2);
});

Deno.test("a write whose deadline passed while its transaction waited for a connection is not run (#14)", async () => {
  // BEGIN gets a connection only after 300 ms; the write's deadline is 100 ms.
  const pool = standInPool(async (fn) => {
    await tick(300);
    return fn({} as Tx);
  });
  const group = new PgGroupCommit(pool.sql, () => {}, 100);
  let ran = 0;
  const outcome = await group.run(() => {
    ran++;
    return Promise.resolve();
  }).then(() => "committed", (err) => String(err));
  assert.match(outcome, /no COMMIT within 100 ms/);
  await group.drain();
  await tick(350); // the transaction has begun by now
  assert.equal(ran, 0, "a write its session gave up on (4xx) is not stored");
});
