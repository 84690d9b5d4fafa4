/**
 * A `reserve()` whose connection cannot connect gets that connection's error, as a query does.
 * Since a waiting reserve stays queued for the first connection that opens (vendor/postgres
 * README, tests/queue/pg_reserve_idle_race_test.ts) nothing rejected it: the pool reconnected
 * for it again and again, and the caller waited for its own deadline (a PostgreSQL serve's
 * maintenance pass: 5 minutes) with no word of the refused login, full server or down server.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { postgresTest } from "../_helpers/postgres.ts";
import { answerWithin } from "../_helpers/wait_until.ts";

/** What `sql.reserve()` came to within 10 s: "reserved", the error's code, or no answer. */
function reserveOutcome(url: string, max = 2): Promise<string> {
  const sql = postgres(url, { max, idle_timeout: 1, connect_timeout: 30, onnotice: () => {} });
  const outcome = answerWithin(
    sql.reserve().then(
      (c) => (c.release(), "reserved"),
      (err: { code?: string }) => `rejected ${err.code}`,
    ),
    10_000,
  );
  return outcome.finally(() => sql.end({ timeout: 0 }));
}

await postgresTest("a reserve() whose connection cannot connect gets its error", async (pg, t) => {
  const admin = postgres(pg.url(), { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe("CREATE ROLE full_role LOGIN CONNECTION LIMIT 0");
  } finally {
    await admin.end({ timeout: 1 });
  }
  await t.step("a database that does not exist (FATAL 3D000 at login)", async () => {
    assert.equal(await reserveOutcome(pg.url("no_such_db")), "rejected 3D000");
  });
  await t.step("too many connections for the role (FATAL 53300 at login)", async () => {
    const url = `postgres://full_role@127.0.0.1:${pg.port}/postgres`;
    assert.equal(await reserveOutcome(url), "rejected 53300");
  });
  await t.step("a healthy server still reserves", async () => {
    assert.equal(await reserveOutcome(pg.url()), "reserved");
  });
  await t.step("the server down (connection refused)", async () => {
    await pg.kill("fast");
    assert.equal(await reserveOutcome(pg.url(), 1), "rejected ECONNREFUSED");
    await pg.start();
  });
});
