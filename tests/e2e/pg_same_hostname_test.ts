/**
 * Two `serve` nodes on one database with the same `hostname`: leases are owned by
 * `HOSTNAME|session`, and a start drops every lease of its hostname (what its previous process
 * left). Before, the second node started and dropped the first's live leases, so both could
 * deliver the same mail. Now it refuses to start (one startup_failed line naming the hostname,
 * exit 1) while the first runs, and a node restarted after a crash starts as before.
 */
import assert from "node:assert/strict";
import { connectPostgres, type Sql } from "../../src/queue/pg/connect.ts";
import { type PostgresCluster, postgresTest } from "../_helpers/postgres.ts";
import { postgresNodeConfig } from "../_helpers/postgres_nodes.ts";
import { removeTestFiles, type ServerProcess, startServer } from "../_helpers/server_process.ts";
import { until } from "../_helpers/wait_until.ts";

/** Ends node `name`'s lock session (as a network cut or a server restart would). */
async function cutNodeLock(sql: Sql, name: string): Promise<void> {
  const rows = await sql`SELECT pg_terminate_backend(pid, 10000) AS ok FROM pg_stat_activity
      WHERE application_name = ${`odmr-relay ${name} node`}`;
  assert.deepEqual(rows.map((r) => r.ok), [true]);
}

/** A second node refused; node A's crash; its restart. */
async function refusedThenCrash(pg: PostgresCluster): Promise<void> {
  const url = await pg.createDatabase("same_hostname");
  const config = postgresNodeConfig("mx-a.test", url);
  const sql = await connectPostgres({ url, max: 1 });
  const nodes: ServerProcess[] = [];
  try {
    const a = await startServer({ config });
    nodes.push(a);
    // A live drain lease of node A's (as its ATRN session takes one).
    await sql`INSERT INTO domain_leases (domain, owner, lease_until)
        VALUES ('live.test', 'mx-a.test|1@1', ${Date.now() + 3_600_000})`;
    const b = await startServer({ config, until: /event=(ready|startup_failed)\b/ });
    nodes.push(b);
    const out = b.logs();
    assert.doesNotMatch(out, /event=ready/);
    assert.equal(await b.exited(), 1, b.logs());
    const failures = b.logs().split("\n").filter((l) => l.includes("startup_failed"));
    assert.equal(failures.length, 1, b.logs());
    assert.match(failures[0] ?? "", /hostname \\?"mx-a\.test\\?" .*already running/, b.logs());
    const [row] = await sql`SELECT owner FROM domain_leases WHERE domain = 'live.test'`;
    assert.equal(row?.owner, "mx-a.test|1@1", "node A's lease kept");

    // Node A crashes: once the server has seen its sessions end, the node starts again and
    // drops the lease A left.
    await a.kill9();
    await until("node A's sessions gone", async () => {
      const [r] = await sql`SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name LIKE 'odmr-relay mx-a.test%'`;
      return r?.n === 0;
    });
    const c = await startServer({ config });
    nodes.push(c);
    assert.match(c.logs(), /event=stale_leases_released count=1/);
    assert.equal((await sql`SELECT 1 FROM domain_leases WHERE domain = 'live.test'`).length, 0);
  } finally {
    for (const n of nodes) {
      await n.stop().catch(() => {});
      await removeTestFiles(n);
    }
    await sql.end({ timeout: 5 });
  }
}

/**
 * Node A's lock connection is cut: A takes the lock again on its new session, and a second
 * node is still refused. Cut again while another session waits for the lock (granted the
 * moment A's session ends): A finds it taken, logs node_lock_lost and stops, exit 1.
 */
async function lockConnectionCut(pg: PostgresCluster): Promise<void> {
  const url = await pg.createDatabase("same_hostname_cut");
  const config = postgresNodeConfig("mx-a.test", url);
  const sql = await connectPostgres({ url, max: 2 });
  const holder = await sql.reserve();
  const nodes: ServerProcess[] = [];
  try {
    const a = await startServer({ config });
    nodes.push(a);
    await cutNodeLock(sql, "mx-a.test");
    await until("node A's lock taken again", () => /event=node_lock_retaken/.test(a.logs()));
    const b = await startServer({ config, until: /event=(ready|startup_failed)\b/ });
    nodes.push(b);
    assert.equal(await b.exited(), 1, b.logs());
    assert.match(b.logs(), /event=startup_failed reason=.*hostname \\"mx-a\.test\\"/);

    // Sent now (postgres.js sends a query when it is awaited or executed).
    const taking = holder`SELECT pg_advisory_lock(hashtextextended('odmr-relay node mx-a.test', 0))`
      .execute();
    await until("the test's session waits for the lock", async () => {
      const [r] = await sql`SELECT count(*)::int AS n FROM pg_locks
          WHERE locktype = 'advisory' AND NOT granted`;
      return r?.n === 1;
    });
    await cutNodeLock(sql, "mx-a.test");
    await taking;
    assert.equal(await a.exited(), 1, a.logs());
    assert.match(a.logs(), /event=node_lock_lost hostname=mx-a\.test /);
    assert.match(a.logs(), /event=stopping signal=node_lock_lost/);
  } finally {
    holder.release();
    for (const n of nodes) {
      await n.stop().catch(() => {});
      await removeTestFiles(n);
    }
    await sql.end({ timeout: 5 });
  }
}

await postgresTest("one serve per hostname on a database (#13)", async (pg, t) => {
  await t.step(
    "a second serve with the same hostname refuses to start; a crashed node restarts",
    () => refusedThenCrash(pg),
  );
  await t.step(
    "a lost lock connection: the lock is taken again, or serve stops",
    () => lockConnectionCut(pg),
  );
});
