/**
 * N1 (review rev12c): a call past its deadline drops its connection only when that connection
 * is silent, never while it is answering. On the pool of deadline-bound calls each statement
 * is bounded by the server (`statement_timeout` just below the deadline), but the server times
 * each one from when IT starts it: the fourth of five queries pipelined on one busy connection
 * waits past its deadline + SILENCE_GRACE_MS while every statement ahead of it answers in
 * time. Before, that dropped the healthy connection: its own and every later query on it
 * failed with CONNECTION_CLOSED. Now a connection is dropped only when it has received nothing
 * for longer than any statement may run (src/queue/pg/_deadline.ts).
 */
import assert from "node:assert/strict";
import { connectPostgres } from "../../src/queue/pg/connect.ts";
import { statementTimeoutFor, within } from "../../src/queue/pg/_deadline.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { startPostgresProxy } from "../_helpers/postgres_proxy.ts";
import { answerWithin } from "../_helpers/wait_until.ts";

const DEADLINE_MS = 500;
/** Each step waits at most this long: a call that never answers fails the test. */
const STEP_BOUND_MS = 8_000;

/** A query's outcome as "ok N", "late" (its deadline passed) or "failed CODE: message". */
function outcome(p: Promise<readonly { i?: unknown }[]>): Promise<string> {
  return answerWithin(
    p.then(
      (r) => `ok ${r[0]?.i}`,
      (e) => e?.name === "PgDeadlineError" ? "late" : `failed ${e?.code}: ${e?.message}`,
    ),
    STEP_BOUND_MS,
  );
}

await postgresTest(
  "five queries pipelined on one busy connection: the ones waiting past their deadline behind answering statements fail late, the connection stays (N1)",
  async (pg) => {
    const sql = await connectPostgres({
      url: pg.url(),
      max: 1,
      statementTimeoutMs: statementTimeoutFor(DEADLINE_MS),
    });
    try {
      // Each statement (0.4 s) ends well within the server's 450 ms bound; the 4th starts
      // about 1.2 s in: past its deadline + 1 s of grace before it answers.
      const calls = [1, 2, 3, 4, 5].map((i) =>
        outcome(within(sql`SELECT pg_sleep(0.4), ${i}::int AS i`, DEADLINE_MS, `q${i}`))
      );
      // Pipelined behind them (within() sends its query a microtask late), no deadline of
      // its own: it fails only if the connection is dropped.
      await new Promise((r) => setTimeout(r, 0));
      const after = outcome(sql`SELECT 6 AS i`);
      const got = await Promise.all(calls);
      assert.equal(got[0], "ok 1");
      // Before: "failed CONNECTION_CLOSED" for q4 and q5.
      for (const [n, g] of got.entries()) {
        assert.match(g, /^(ok \d|late|failed 57014: .*statement timeout)$/, `q${n + 1}: ${g}`);
      }
      assert.equal(await after, "ok 6", "a healthy, answering connection was dropped");
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
);

await postgresTest(
  "a call queued behind a statement without a deadline on a connection gone silent still drops it: the pool answers again (N1)",
  async (pg) => {
    const proxy = await startPostgresProxy(pg.port);
    const sql = await connectPostgres({
      url: proxy.via(pg.url()),
      max: 1,
      statementTimeoutMs: statementTimeoutFor(DEADLINE_MS),
    });
    try {
      // The first statement (no deadline) goes out, then the connection goes silent; the
      // call with a deadline waits behind it.
      const stalled = proxy.stallWhenSent("'front' AS i");
      const front = outcome(sql`SELECT 'front' AS i`);
      const late = outcome(within(sql`SELECT 2 AS i`, DEADLINE_MS, "behind"));
      assert.equal(await answerWithin(stalled.then(() => "stalled"), STEP_BOUND_MS), "stalled");
      assert.equal(await late, "late");
      // Dropped once silent past any statement's bound: both fail retryably, and the pool's
      // next query gets a fresh connection. Before the drop they waited as long as TCP held.
      assert.match(await front, /^failed CONNECTION_CLOSED/);
      assert.equal(await outcome(sql`SELECT 3 AS i`), "ok 3");
    } finally {
      await proxy.close();
      await sql.end({ timeout: 1 });
    }
  },
);
