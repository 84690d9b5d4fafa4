/**
 * A PostgreSQL call past its deadline (src/queue/pg/_deadline.ts) must leave every other
 * caller on its connection with its own answer. postgres.js pipelines queries on a busy
 * connection; a client-side CancelRequest for the late one (b82dd2a) broke that: sent for a
 * query still queued behind another, postgres.js dropped it from its queue while the server
 * still ran it, so each later query was handed the answer of the one before; sent as the late
 * statement had just ended, it cancelled the next caller's. Now the late query keeps its
 * place (the server bounds statements with `statement_timeout`), and its answer is dropped.
 * Here on a bare pool (no statement timeout): slowness comes from pg_sleep.
 */
import assert from "node:assert/strict";
import { connectPostgres } from "../../src/queue/pg/connect.ts";
import { within } from "../../src/queue/pg/_deadline.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { answerWithin } from "../_helpers/wait_until.ts";

/** Each step waits at most this long: a call that never answers fails the test. */
const STEP_BOUND_MS = 5_000;

/** `SELECT pg_sleep(s), who` as "got WHO" or "failed: message", bounded. */
function ask(p: PromiseLike<readonly { who?: unknown }[]>): Promise<string> {
  return answerWithin(
    Promise.resolve(p).then((r) => `got ${r[0]?.who}`, (e) => `failed: ${e.message}`),
    STEP_BOUND_MS,
  );
}

await postgresTest(
  "a late query queued behind another keeps its place: the callers after it get their own answers and the connection stays",
  async (pg) => {
    const sql = await connectPostgres({ url: pg.url(), max: 1 });
    try {
      // P is slow and first on the only connection; A, with a 300 ms deadline, is pipelined
      // behind it; B behind A.
      const p = ask(sql`SELECT pg_sleep(0.6), 'P' AS who`);
      const a = ask(within(sql`SELECT 'A-secret' AS who`, 300, "A"));
      await new Promise((r) => setTimeout(r, 20)); // within() sends A a microtask late
      const b = ask(sql`SELECT 'B' AS who`);
      assert.equal(await p, "got P");
      assert.match(await a, /^(got A-secret|failed: A: no answer from PostgreSQL within 300 ms)/);
      // Before: "got A-secret" (A was dropped from the pipeline, its answer went to B).
      assert.equal(await b, "got B");
      // Before: C was cancelled by A's CancelRequest, D failed with CONNECTION_CLOSED when the
      // grace dropped the healthy connection under it (A never settled).
      assert.equal(await ask(sql`SELECT pg_sleep(0.3), 'C' AS who`), "got C");
      assert.equal(await ask(sql`SELECT pg_sleep(1.0), 'D' AS who`), "got D");
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
);

await postgresTest(
  "a late query whose answer is already on its way does not end the next caller's statement",
  async (pg) => {
    const sql = await connectPostgres({ url: pg.url(), max: 1 });
    try {
      const a = ask(within(sql`SELECT pg_sleep(0.2), 'A' AS who`, 300, "A"));
      await new Promise((r) => setTimeout(r, 20));
      const b = ask(sql`SELECT pg_sleep(1), 'B' AS who`);
      await new Promise((r) => setTimeout(r, 80));
      // The event loop is busy from about 100 to 400 ms (a GC pause, a burst of TLS
      // handshakes): A's answer waits unread in the socket while its deadline passes.
      const until = Date.now() + 300;
      while (Date.now() < until) { /* busy */ }
      assert.match(await a, /^(got A|failed: A: no answer from PostgreSQL within 300 ms)/);
      // Before: "failed: canceling statement due to user request" (A's CancelRequest).
      assert.equal(await b, "got B");
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
);
