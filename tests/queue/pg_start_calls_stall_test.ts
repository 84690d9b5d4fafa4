/**
 * What serve's start and the `queue`, `user list` and `dkim` commands wait on answers within a
 * deadline when PostgreSQL goes silent after its handshake (`connect_timeout` ends only the
 * handshake): a pool's first query, the migrations (each statement, the wait for another
 * node's migration included), the operator queries and the DKIM key edits. Before, each waited
 * for good. A migration step cut at its deadline leaves the schema as its version row says:
 * the step before its COMMIT is rolled back, a step whose COMMIT went out is whole.
 */
import assert from "node:assert/strict";
import { PgDkimKeys } from "../../src/dkim/pg_keys.ts";
import { PgQueueAdmin } from "../../src/queue/pg/admin.ts";
import { connectPostgres, type Sql } from "../../src/queue/pg/connect.ts";
import { applyPgMigrations, PG_QUEUE_MIGRATIONS } from "../../src/queue/pg/schema.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { bounded, DEADLINE_MS, proxyOf, withShortDeadline } from "../_helpers/pg_short_deadline.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { startPostgresProxy } from "../_helpers/postgres_proxy.ts";
import { until } from "../_helpers/wait_until.ts";

const ok = () => "ok";
const failed = (e: Error) => `failed: ${e.message}`;
const LAST = PG_QUEUE_MIGRATIONS.length;
/** The step that creates `migrated_messages`, the table `schemaOf` looks for. */
const MIGRATED = PG_QUEUE_MIGRATIONS.findIndex((s) => s.includes("CREATE TABLE migrated_")) + 1;

let selectors = 0;

/** The calls of `queue requeue|summary`, `user list|show` and `dkim`: name, call, its `what`. */
const TOOL_CALLS: readonly (readonly [
  string,
  (admin: PgQueueAdmin, keys: PgDkimKeys) => Promise<unknown>,
  string,
])[] = [
  ["queue summary", (admin) => admin.ages(Date.now()), "queue ages"],
  ["user list: waiting mail", (admin) => admin.waiting(["example.org"]), "waiting mail"],
  ["user list: last collections", (admin) => admin.lastCollections(), "last collections"],
  ["queue requeue", (admin) => admin.requeue({ kind: "all" }), "requeue"],
  [
    "dkim keygen",
    (_, keys) => keys.generate("example.org", `s${selectors++}`, "ed25519"),
    "DKIM key insert",
  ],
  ["dkim list", (_, keys) => keys.list(), "DKIM key list"],
  ["dkim remove", (_, keys) => keys.remove("example.org", "s0"), "DKIM key removal"],
];

/**
 * The schema's recorded version, whether step MIGRATED's table (migrated_messages) exists and
 * whether the last step's column (messages.submitter) does.
 */
async function schemaOf(url: string): Promise<string> {
  const sql = await connectPostgres({ url, max: 1 });
  try {
    const [row] = await sql`SELECT (SELECT version FROM schema_version
        WHERE component = 'queue') AS version,
      to_regclass('migrated_messages') IS NOT NULL AS has_table,
      EXISTS (SELECT 1 FROM information_schema.columns
        WHERE table_name = 'messages' AND column_name = 'submitter') AS has_column`;
    return `version ${row?.version}, migrated_messages ${row?.has_table ? "present" : "absent"}` +
      `, submitter ${row?.has_column ? "present" : "absent"}`;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Runs `fn` on a pool reaching `url` through a fresh proxy, then closes both. */
async function throughProxy(
  pgPort: number,
  url: string,
  fn: (sql: Sql, proxy: Awaited<ReturnType<typeof startPostgresProxy>>) => Promise<void>,
): Promise<void> {
  const proxy = await startPostgresProxy(pgPort);
  const sql = await connectPostgres({ url: proxy.via(url), max: 2 });
  try {
    await fn(sql, proxy);
  } finally {
    await proxy.close();
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

await postgresTest(
  "serve's start and the operator commands answer within their deadlines on a PostgreSQL silent after its handshake (#13)",
  async (pg, t) => {
    await t.step("a pool's first query", async () => {
      const url = await pg.createDatabase("stall_first_query");
      const proxy = await startPostgresProxy(pg.port);
      try {
        const stalled = proxy.stallWhenSent("SELECT 1 AS one");
        const got = await bounded(
          connectPostgres({
            url: proxy.via(url),
            connectTimeoutSeconds: 1,
            answerWithinMs: DEADLINE_MS,
          }).then(
            async (sql) => (await sql.end({ timeout: 1 }), "connected"),
            failed,
          ),
        );
        assert.equal(await bounded(stalled.then(() => "stalled")), "stalled");
        assert.match(
          got,
          /^failed: Cannot connect to PostgreSQL "odmr@127\.0\.0\.1:\d+\/stall_first_query": first query: no answer from PostgreSQL within 1500 ms/,
        );
      } finally {
        await proxy.close();
      }
    });

    // The first query's deadline counts from the connect timeout's end: a server that never
    // finishes the handshake fails as a connect timeout, not as a silent first query.
    await t.step("a handshake never answered is a connect timeout", async () => {
      const url = await pg.createDatabase("stall_handshake");
      const proxy = await startPostgresProxy(pg.port);
      try {
        proxy.setSilent(true);
        const got = await bounded(
          connectPostgres({
            url: proxy.via(url),
            connectTimeoutSeconds: 1,
            answerWithinMs: DEADLINE_MS,
          }).then(async (sql) => (await sql.end({ timeout: 1 }), "connected"), failed),
        );
        assert.match(
          got,
          /^failed: Cannot connect to PostgreSQL "odmr@127\.0\.0\.1:\d+\/stall_handshake": .*CONNECT_TIMEOUT/,
        );
      } finally {
        await proxy.close();
      }
    });

    // The store's calls have a short deadline (500 ms) here, its pools' first queries not: a
    // handshake slowed down (1 s) on a loaded machine is waited for.
    await t.step("a store with a short call deadline waits for a slow handshake", async () => {
      const url = await pg.createDatabase("slow_handshake");
      await (await PgQueueStore.open({ url }, { nodeId: "setup" })).close();
      const proxy = await startPostgresProxy(pg.port);
      try {
        // The main pool's startup message (the other pools are "odmr-relay long|chunks").
        const delayed = proxy.delayWhenSent("\0odmr-relay\0", 1_000);
        const got = await bounded(
          PgQueueStore.open({ url: proxy.via(url) }, {
            nodeId: "n1",
            callDeadlineMs: DEADLINE_MS,
          }).then(async (store) => (await store.close(), "opened"), failed),
        );
        assert.equal(await bounded(delayed.then(() => "delayed")), "delayed");
        assert.equal(got, "opened");
      } finally {
        await proxy.close();
      }
    });

    await t.step("a migration step cut before its COMMIT is rolled back", async () => {
      const url = await pg.createDatabase("stall_step");
      await throughProxy(pg.port, url, async (sql, proxy) => {
        const stalled = proxy.stallWhenSent("CREATE TABLE migrated_messages");
        const got = await bounded(applyPgMigrations(sql, DEADLINE_MS).then(ok, failed));
        assert.equal(await bounded(stalled.then(() => "stalled")), "stalled");
        assert.match(
          got,
          new RegExp(
            `^failed: Cannot migrate database schema for "queue" to version ${MIGRATED}: ` +
              `migration step: no answer from PostgreSQL within 500 ms`,
          ),
        );
      });
      assert.equal(
        await schemaOf(url),
        `version ${MIGRATED - 1}, migrated_messages absent, submitter absent`,
      );
      // The next start applies it (the cut session's advisory lock went with it).
      const sql = await connectPostgres({ url, max: 1 });
      try {
        assert.equal(await bounded(applyPgMigrations(sql, DEADLINE_MS).then(ok, failed)), "ok");
      } finally {
        await sql.end({ timeout: 5 });
      }
      assert.equal(
        await schemaOf(url),
        `version ${LAST}, migrated_messages present, submitter present`,
      );
    });

    await t.step("a migration step whose COMMIT's answer is lost is whole", async () => {
      const url = await pg.createDatabase("stall_commit");
      // A database one step behind: the last step's column gone, its version row back.
      const setup = await connectPostgres({ url, max: 1 });
      try {
        await applyPgMigrations(setup);
        await setup.unsafe(`ALTER TABLE messages DROP COLUMN submitter;
          UPDATE schema_version SET version = ${LAST - 1} WHERE component = 'queue'`);
      } finally {
        await setup.end({ timeout: 5 });
      }
      await throughProxy(pg.port, url, async (sql, proxy) => {
        const stalled = proxy.stallWhenAnswered("COMMIT");
        const got = await bounded(applyPgMigrations(sql, DEADLINE_MS).then(ok, failed));
        assert.equal(await bounded(stalled.then(() => "stalled")), "stalled");
        assert.match(got, /^failed: .* to version \d+: migration step: no answer .* 500 ms/);
      });
      assert.equal(
        await schemaOf(url),
        `version ${LAST}, migrated_messages present, submitter present`,
      );
    });

    await t.step("the wait for another node's migration", async () => {
      const url = await pg.createDatabase("stall_migration_lock");
      const other = await connectPostgres({ url, max: 1 });
      const sql = await connectPostgres({ url, max: 1 });
      try {
        const node = await other.reserve();
        await node`SELECT pg_advisory_lock(${0x6f646d72})`;
        const got = await bounded(applyPgMigrations(sql, DEADLINE_MS).then(ok, failed));
        assert.match(
          got,
          /^failed: Cannot migrate database schema for "queue": waiting for another node's migration: canceling statement due to lock timeout/,
        );
        node.release();
      } finally {
        await other.end({ timeout: 5 });
        await sql.end({ timeout: 5 });
      }
    });

    await t.step(
      "the operator queries and the DKIM key edits",
      () =>
        withShortDeadline(pg, { db: "stall_tools", proxy: true, max: 1 }, async (s) => {
          const admin = new PgQueueAdmin(s.store.pool, { deadlineMs: s.store.callDeadlineMs });
          const keys = new PgDkimKeys(s.store.pool, Date.now, s.store.callDeadlineMs);
          for (const [, call] of TOOL_CALLS) {
            assert.equal(await bounded(call(admin, keys).then(ok, failed)), "ok");
          }
          // The pool's connection goes silent, and so does every new one.
          const proxy = proxyOf(s);
          proxy.setSilent(true);
          assert.ok(proxy.stallAll() >= 1);
          const open = proxy.openConnections;
          for (const [i, [name, call, what]] of TOOL_CALLS.entries()) {
            assert.match(
              await bounded(call(admin, keys).then(ok, failed)),
              new RegExp(`^failed: ${what}: no answer from PostgreSQL within 500 ms`),
              name,
            );
            // Each on its own: the next one waits for a new connection, not behind this one.
            if (i === 0) {
              await until("the silent connection dropped", () => proxy.openConnections < open);
            }
          }
        }),
    );
  },
);
