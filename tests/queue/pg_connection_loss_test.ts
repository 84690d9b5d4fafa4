/**
 * serve survives PostgreSQL connections lost the ways a restart loses them (#14), through a
 * proxy that cuts them at a chosen moment (tests/_helpers/postgres_proxy.ts):
 * - a reset or PostgreSQL's FATAL 57P01 while a new connection fetches the array types (the
 *   first statement of every connection) was an unhandled rejection, which ends a Deno
 *   process: "Uncaught (in promise) Error: read ECONNRESET" killed a node in the outage test;
 * - after a FATAL 57P01, the next connection's first query failed with that old error;
 * - a commit waits at most its deadline when the server accepts connections and never answers
 *   (it had waited for the 10 s connect timeout of each connection tried, in turn).
 */
import assert from "node:assert/strict";
import { connectPostgres, type Sql } from "../../src/queue/pg/connect.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { type Cut, type PostgresProxy, startPostgresProxy } from "../_helpers/postgres_proxy.ts";
import { answerWithin } from "../_helpers/wait_until.ts";

/** The first statement postgres.js sends on every new connection (fetch_types). */
const ARRAY_TYPES_QUERY = "pg_catalog.pg_type";

/** Runs `fn`, then fails if any promise was rejected with no handler meanwhile. */
async function withoutUnhandledRejections(fn: () => Promise<void>): Promise<void> {
  const unhandled: string[] = [];
  const listener = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    unhandled.push(String(e.reason));
  };
  globalThis.addEventListener("unhandledrejection", listener);
  try {
    await fn();
    // Rejections are reported after the turn that made them: let a few turns go by.
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 20));
  } finally {
    globalThis.removeEventListener("unhandledrejection", listener);
  }
  assert.deepEqual(unhandled, [], "promises rejected with no handler (a serve node would die)");
}

/**
 * A test on a fresh database `db`, reached through a proxy by a pool of one connection, that
 * also fails when a promise was rejected with no handler.
 */
function proxiedPoolTest(
  name: string,
  db: string,
  fn: (sql: Sql, proxy: PostgresProxy) => Promise<void>,
): Promise<void> {
  return postgresTest(name, async (pg) => {
    const url = await pg.createDatabase(db);
    const proxy = await startPostgresProxy(pg.port);
    try {
      const sql = await connectPostgres({ url: proxy.via(url), max: 1 });
      try {
        await withoutUnhandledRejections(() => fn(sql, proxy));
      } finally {
        await sql.end({ timeout: 1 });
      }
    } finally {
      await proxy.close();
    }
  });
}

async function one(sql: Sql): Promise<string> {
  return await sql`SELECT 1 AS one`.then((rows) => `ok ${rows[0]?.one}`, (err) => String(err));
}

for (const how of ["reset", "fatal"] as const satisfies readonly Cut[]) {
  await proxiedPoolTest(
    `a connection lost by ${how} while it fetches the array types: no unhandled rejection, the pool goes on (#14)`,
    `types_${how}`,
    async (sql, proxy) => {
      // The pool's one connection goes; a query opens another, cut in its start-up (the first
      // query may still find the old socket: EPIPE or ECONNRESET, then the next).
      let isCut = false;
      const cut = proxy.cutWhenSent(ARRAY_TYPES_QUERY, how).then(() => isCut = true);
      proxy.cutAll("reset");
      let first = "";
      for (let i = 0; i < 5 && !isCut; i++) first = await answerWithin(one(sql), 5000);
      await answerWithin(cut.then(() => "cut"), 5000);
      if (how === "reset") {
        // The reset reaches the query that waited for the connection, as a 4xx would.
        assert.match(first, /ECONNRESET/);
      } else {
        // A clean close during start-up: postgres.js connects again for the waiting query,
        // which must not fail with the old session's 57P01 (it did: stale ErrorResponse).
        assert.equal(first, "ok 1");
      }
      assert.equal(
        await answerWithin(one(sql), 5000),
        "ok 1",
        "the next query, on a new connection",
      );
    },
  );
}

await proxiedPoolTest(
  "a query issued as soon as the previous one failed on a reset connection settles (#14)",
  "reset_next",
  async (sql, proxy) => {
    proxy.cutAll("reset");
    // Each query is issued the moment the one before settled: the first fails on the reset
    // socket, and the next came between the socket's 'error' and its 'close' (on Deno's
    // node:net) and waited forever.
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) outcomes.push(await answerWithin(one(sql), 5000));
    assert.match(outcomes[0] ?? "", /EPIPE|ECONNRESET/, outcomes.join(" | "));
    assert.ok(!outcomes.some((o) => o.startsWith("no answer")), outcomes.join(" | "));
    assert.equal(outcomes.at(-1), "ok 1", outcomes.join(" | "));
  },
);

await proxiedPoolTest(
  "after a session ended by FATAL 57P01 mid-query, the next query runs on a new connection, not failed with that error (#14)",
  "fatal_busy",
  async (sql, proxy) => {
    const cut = proxy.cutWhenSent("pg_sleep", "fatal");
    const busy = await sql`SELECT pg_sleep(0.01)`.then(() => "ok", (err) => String(err));
    await cut;
    assert.match(busy, /CONNECTION_CLOSED|57P01|terminating/, "the query that was cut");
    assert.equal(await one(sql), "ok 1", "the first query on the next connection");
  },
);

await postgresTest(
  "a commit fails within its deadline while the database accepts connections and never answers, and works again after (#14)",
  async (pg) => {
    const url = await pg.createDatabase("silent");
    const proxy = await startPostgresProxy(pg.port);
    const deadlineMs = 1000;
    const store = await PgQueueStore.open({ url: proxy.via(url) }, {
      nodeId: "n1",
      commitDeadlineMs: deadlineMs,
    });
    const commit = async (i: number) => {
      const w = await store.begin({
        mailFrom: "s@example.net",
        params: {},
        recipients: [{ address: `u${i}@example.org`, domain: "example.org" }],
      });
      await w.write(new TextEncoder().encode(`Subject: ${i}\r\n\r\nbody\r\n`));
      await w.commit();
    };
    try {
      await commit(0);
      proxy.setSilent(true);
      proxy.cutAll("reset");
      const started = performance.now();
      const outcomes = await Promise.all(
        [1, 2, 3, 4].map((i) =>
          commit(i).then(() => "committed", (err) => ({
            ms: performance.now() - started,
            err: String(err),
          }))
        ),
      );
      for (const o of outcomes) {
        assert.ok(typeof o === "object", `a commit with the database silent: ${o}`);
        // The deadline, with room for a loaded machine; far below the 10 s connect timeout
        // that each attempt waited for before.
        assert.ok(o.ms < deadlineMs + 3000, `failed after ${Math.round(o.ms)} ms: ${o.err}`);
      }
      proxy.setSilent(false);
      proxy.cutAll("reset"); // the connections still waiting on the silence
      // The node recovers by itself (the pool may first wait out its reconnect backoff).
      let last = "";
      for (let i = 0; i < 30 && last !== "committed"; i++) {
        last = await commit(5).then(() => "committed", (err) => String(err));
      }
      assert.equal(last, "committed", "a commit once the database answers again");
      const ids = (await store.list()).map((m) => m.recipients[0]?.address).sort();
      assert.deepEqual(ids, ["u0@example.org", "u5@example.org"]);
    } finally {
      proxy.cutAll("reset");
      await store.close();
      await proxy.close();
    }
  },
);
