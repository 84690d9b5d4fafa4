/**
 * A schema step that waits for a table lock must not hold up every node's queries. PostgreSQL
 * queues each later lock on a table behind a waiting `ALTER TABLE` (ACCESS EXCLUSIVE), so while
 * the step waited for a long transaction on `messages` (a `queue delete`, an operator's psql
 * session, a report) for up to its 15-minute `lock_timeout`, every node's reads and writes of
 * `messages` queued behind it: their calls passed their 10 s deadlines and mail was answered
 * 451. A step now waits a short time for its locks, gives way (rolled back, nothing applied)
 * and tries again, within a bound: then the start fails naming the lock wait.
 */
import assert from "node:assert/strict";
import { connectPostgres, type Sql } from "../../src/queue/pg/connect.ts";
import { applyPgMigrations, PG_QUEUE_MIGRATIONS } from "../../src/queue/pg/schema.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { answerWithin, until } from "../_helpers/wait_until.ts";

const LAST = PG_QUEUE_MIGRATIONS.length;
const ok = () => "ok";
const failed = (e: Error) => `failed: ${e.message}`;

/** A fresh database one step behind: the last step (ALTER TABLE messages …) still to apply. */
async function oneStepBehind(pg: { createDatabase(n: string): Promise<string> }, db: string) {
  const url = await pg.createDatabase(db);
  const setup = await connectPostgres({ url, max: 1 });
  try {
    await applyPgMigrations(setup);
    await setup.unsafe(`ALTER TABLE messages DROP COLUMN submitter;
      UPDATE schema_version SET version = ${LAST - 1} WHERE component = 'queue'`);
  } finally {
    await setup.end({ timeout: 5 });
  }
  return url;
}

/** The recorded version and whether the last step's column exists. */
async function schemaOf(sql: Sql): Promise<string> {
  const [row] = await sql`SELECT (SELECT version FROM schema_version
      WHERE component = 'queue') AS version,
    EXISTS (SELECT 1 FROM information_schema.columns
      WHERE table_name = 'messages' AND column_name = 'submitter') AS has_column`;
  return `version ${row?.version}, submitter ${row?.has_column ? "present" : "absent"}`;
}

/** A session holding a lock on `messages` that the step's ALTER conflicts with, in a transaction. */
async function holdMessages(sql: Sql) {
  const conn = await sql.reserve();
  await conn`BEGIN`;
  await conn`SELECT count(*) FROM messages`;
  return {
    async release() {
      await conn`COMMIT`;
      conn.release();
    },
  };
}

/** True while a session's ALTER TABLE of the step waits for a lock. */
async function alterWaiting(sql: Sql): Promise<boolean> {
  const [row] = await sql`SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND query LIKE '%ADD COLUMN submitter%'`;
  return (row?.n ?? 0) > 0;
}

await postgresTest(
  "a schema step waiting for a lock on messages gives way to the nodes' queries, and retries within a bound",
  async (pg, t) => {
    await t.step("the nodes' queries answer while a long transaction holds the table", async () => {
      const url = await oneStepBehind(pg, "lock_wait_gives_way");
      const other = await connectPostgres({ url, max: 2 });
      const migrating = await connectPostgres({ url, max: 1 });
      const node = await connectPostgres({ url, max: 1 });
      try {
        const holder = await holdMessages(other);
        const migration = applyPgMigrations(migrating).then(ok, failed);
        await until("the step's ALTER waiting for its lock", () => alterWaiting(other), 15_000);
        // A node's read of messages, as every drain and maintenance pass does.
        const read = await answerWithin(
          node`SELECT count(*)::int AS n FROM messages`.then((r) => `answered ${r[0]?.n}`),
          20_000,
        );
        await holder.release();
        assert.equal(read, "answered 0");
        assert.equal(await answerWithin(migration, 30_000), "ok");
        assert.equal(await schemaOf(node), `version ${LAST}, submitter present`);
      } finally {
        await Promise.all([other, migrating, node].map((s) => s.end({ timeout: 5 })));
      }
    });

    await t.step("a table held past the bound fails the step, naming the lock wait", async () => {
      const url = await oneStepBehind(pg, "lock_wait_bounded");
      const other = await connectPostgres({ url, max: 2 });
      const migrating = await connectPostgres({ url, max: 1 });
      try {
        const holder = await holdMessages(other);
        const got = await answerWithin(
          applyPgMigrations(migrating, undefined, { waitMs: 200, retryForMs: 1_000 }).then(
            ok,
            failed,
          ),
          20_000,
        );
        await holder.release();
        assert.match(
          got,
          new RegExp(
            `^failed: Cannot migrate database schema for "queue" to version ${LAST}: ` +
              `its tables stayed locked by other sessions for 1000 ms ` +
              `\\(lock_timeout 200 ms, \\d+ attempts\\): canceling statement due to lock timeout`,
          ),
        );
        assert.equal(await schemaOf(other), `version ${LAST - 1}, submitter absent`);
        // The next start applies it.
        assert.equal(
          await answerWithin(applyPgMigrations(migrating).then(ok, failed), 30_000),
          "ok",
        );
        assert.equal(await schemaOf(other), `version ${LAST}, submitter present`);
      } finally {
        await Promise.all([other, migrating].map((s) => s.end({ timeout: 5 })));
      }
    });
  },
);
