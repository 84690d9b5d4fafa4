/**
 * A connection held by `reserve()` that the server ends (a restart, `pg_terminate_backend`, an
 * `idle_session_timeout`) is the pool's again only through its close, never through the
 * holder's `release()`. postgres.js's `release()` handed the connection back as open: with
 * its socket gone, the next query on the pool failed (CONNECTION_CLOSED) and every later one,
 * and every later `reserve()`, waited for good on a connection that never came back. The
 * maintenance pass holds its lock on such a connection (src/queue/pg/_maintenance.ts), so a
 * PostgreSQL restart during a pass stopped maintenance until serve was restarted. And a query
 * on the lost handle went out on whatever session the pool had opened on that connection
 * since: another caller's.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { postgresTest } from "../_helpers/postgres.ts";
import { answerWithin, until } from "../_helpers/wait_until.ts";

type Pool = ReturnType<typeof postgres>;

/** What `query` came to within 5 s: "ok <value>", "failed <code>" or no answer. */
function outcome(query: Promise<postgres.Row[]>): Promise<string> {
  return answerWithin(
    query.then((r) => `ok ${r[0]?.v}`, (e: { code?: string }) => `failed ${e.code}`),
    5_000,
  );
}

/** Ends the session of the reserved `conn` from `admin`; returns its pid. */
async function endSession(admin: Pool, conn: postgres.ReservedSql): Promise<number> {
  const [row] = await conn`SELECT pg_backend_pid() AS pid`;
  const pid = Number(row?.pid);
  await admin`SELECT pg_terminate_backend(${pid})`;
  await until("the session's end", async () => {
    const [left] = await admin`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ${pid}`;
    return left?.n === 0;
  });
  return pid;
}

await postgresTest(
  "a reserved connection the server ended is not handed out by its release",
  async (pg, t) => {
    const admin = postgres(pg.url(), { max: 1, onnotice: () => {} });
    try {
      await t.step("the pool's later queries and reserves get a working connection", async () => {
        const sql = postgres(pg.url(), { max: 1, onnotice: () => {} });
        try {
          const conn = await sql.reserve();
          await endSession(admin, conn);
          // The holder learns of the loss by its next query, as the maintenance pass does (reset
          // or closed, as the client saw the end before or after it wrote the query).
          assert.match(
            await outcome(conn`SELECT 1 AS v`),
            /^failed (CONNECTION_CLOSED|ECONNRESET)$/,
          );
          conn.release();
          for (let i = 0; i < 3; i++) {
            assert.equal(await outcome(sql`SELECT ${i}::int AS v`), `ok ${i}`, `query ${i}`);
          }
          const again = await answerWithin(
            sql.reserve().then(async (c) => {
              const [row] = await c`SELECT 7 AS v`;
              c.release();
              return `reserved ${row?.v}`;
            }, (e: { code?: string }) => `failed ${e.code}`),
            5_000,
          );
          assert.equal(again, "reserved 7");
        } finally {
          await sql.end({ timeout: 1 });
        }
      });

      await t.step(
        "a query on the lost handle never runs in another caller's session",
        async () => {
          const sql = postgres(pg.url(), { max: 1, onnotice: () => {} });
          try {
            const conn = await sql.reserve();
            // Waits for the one connection, which the reserve holds.
            const other = outcome(sql`SELECT pg_backend_pid() AS v`);
            const pid = await endSession(admin, conn);
            // The close handed the connection to the waiting query: a new session.
            const otherGot = await other;
            assert.match(otherGot, /^ok \d+$/);
            assert.notEqual(otherGot, `ok ${pid}`);
            assert.equal(
              await outcome(conn`SELECT pg_backend_pid() AS v`),
              "failed CONNECTION_CLOSED",
            );
            conn.release();
            assert.match(await outcome(sql`SELECT 1 AS v`), /^ok 1$/);
          } finally {
            await sql.end({ timeout: 1 });
          }
        },
      );
    } finally {
      await admin.end({ timeout: 1 });
    }
  },
);
