/**
 * rev13b repro: a BEGIN that is the query filling its connection's pipeline (max_pipeline,
 * 100 in connect.ts) is sent, but postgres.js calls its `onexecute` only when the connection
 * can take more (connection.js execute()): begin() then has no connection (undefined), so
 * neither the transaction nor vendor `onbegin` gets one. What happens to the caller and the
 * process?
 */
import assert from "node:assert/strict";
import { connectPostgres } from "../../src/queue/pg/connect.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { answerWithin } from "../_helpers/wait_until.ts";

await postgresTest(
  "sql.begin() as the 100th query pipelined on a pool of one",
  async (pg) => {
    const sql = await connectPostgres({ url: pg.url(), max: 1, statementTimeoutMs: 9_500 });
    try {
      const plain = [];
      // q1 is the connection's current query, q2..q100 its `sent` (99); BEGIN makes it 100.
      for (let i = 0; i < 100; i++) plain.push(sql`SELECT 1 AS i`.then((r) => r[0]?.i));
      const tx = sql.begin(async (t) => {
        const [row] = await t`SELECT txid_current() AS x`;
        return `in tx ${row?.x}`;
      }).then((v) => `ok ${v}`, (e) => `failed: ${e?.message}`);
      const got = await answerWithin(tx, 5_000);
      const rest = await answerWithin(Promise.all(plain).then((a) => `plain ${a.length}`), 5_000);
      // The pool is still sane afterwards: two plain queries 50 ms apart are not inside one
      // open transaction (now() is the transaction's start).
      const [a] = await sql`SELECT now()::text AS t, txid_current()::text AS x`;
      await new Promise((r) => setTimeout(r, 50));
      const [b] = await sql`SELECT now()::text AS t, txid_current()::text AS x`;
      const inTx = a?.t === b?.t;
      // Before: the process ended (an unhandled TypeError in begin()).
      assert.match(got, /^ok in tx/);
      assert.equal(rest, "plain 100");
      assert.equal(inTx, false);
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
);

// The same through the store: an ATRN claim whose BEGIN fills the pipeline of the main pool's
// connection (here a pool of one, so 100 plain queries ahead of it; 8 connections: ~800).
import { shortDeadlineTest } from "../_helpers/pg_short_deadline.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";
await shortDeadlineTest("rev13b: an ATRN claim whose BEGIN is the 100th query on the connection", {
  db: "rev13b_pipeline_full",
  max: 1,
}, async (t) => {
  await queueMessage(t.store, { from: "s@example.net", to: ["u@example.org"] });
  const plain = [];
  for (let i = 0; i < 100; i++) plain.push(t.store.pool`SELECT 1 AS i`.then((r) => r.length));
  const got = await answerWithin(
    t.store.claim(["example.org"], { owner: "s1", leaseSeconds: 60 }).then(
      (r) => r.kind,
      (e) => `failed: ${e?.message}`,
    ),
    5_000,
  );
  await Promise.all(plain);
  assert.equal(got, "claimed");
});
