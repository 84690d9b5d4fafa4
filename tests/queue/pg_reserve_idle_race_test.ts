/**
 * A PostgreSQL serve never finished a maintenance pass (no expiry, no owed failure report, no
 * delay notice; then SIGTERM waited for the stuck pass): the pass's `reserve()` on the long pool
 * came due together with that pool's idle timer (serve's first pass runs a minute after start,
 * the pool's `idle_timeout` is a minute after its migrations), and the reserve never resolved.
 * postgres.js handed the waiting reserve to a fresh connection and left it queued as well; the
 * idle connection's close then took it from the queue for a second fresh connection, and each,
 * once open, dropped it as its `initial` query: both went idle, the reserve waited for good.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { postgresTest } from "../_helpers/postgres.ts";
import { answerWithin } from "../_helpers/wait_until.ts";

await postgresTest(
  "reserve() due at the same moment as the pool's idle timer gets a connection",
  async (pg) => {
    const idleSeconds = 1;
    const sql = postgres(pg.url(), {
      max: 2,
      idle_timeout: idleSeconds,
      fetch_types: true,
      onnotice: () => {},
    });
    try {
      for (let round = 0; round < 3; round++) {
        const conn = await sql.reserve();
        await conn`SELECT 1`;
        // Back to the pool: its idle timer starts now, and our timer of the same length after
        // it, so ours runs just after the pool ended the idle connection (timers of equal
        // delay run in the order they were set).
        conn.release();
        await new Promise((r) => setTimeout(r, idleSeconds * 1000));
        const got = await answerWithin(
          sql.reserve().then(async (c) => {
            const [row] = await c`SELECT 2 AS two`;
            c.release();
            return `reserved, ${row?.two}`;
          }),
          10_000,
        );
        assert.equal(got, "reserved, 2", `round ${round}`);
      }
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
);
