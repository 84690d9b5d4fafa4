/**
 * serve's main PostgreSQL pool opens `queue.postgres.pool_size` connections and no more
 * (README "Connections"): counted in pg_stat_activity by its application_name (`odmr-relay
 * HOSTNAME`; the body chunks' and the long pool's are marked apart, LISTEN is left out). Fifteen
 * scrapes of /metrics at once each hold a transaction (a connection) on the main pool, waiting
 * for the gauges' lock, which the test holds: the pool opens connections up to its size, and
 * the rest wait for one.
 */
import assert from "node:assert/strict";
import { connectPostgres } from "../../src/queue/pg/connect.ts";
import { GAUGES_LOCK } from "../../src/queue/pg/_gauges.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { until } from "../_helpers/wait_until.ts";

const POOL_SIZE = 3;
const SCRAPES = 15;

await postgresTest(
  "serve's main PostgreSQL pool opens queue.postgres.pool_size connections, not more (#13)",
  async (pg) => {
    const url = await pg.createDatabase("pool_size");
    await (await PgQueueStore.open({ url }, { nodeId: "setup" })).close();
    const node = await startServer({
      config: {
        hostname: "mx-a.test",
        metrics: { listen: "127.0.0.1:0" },
        queue: { backend: "postgres", postgres: { url, "pool_size": POOL_SIZE } },
      },
    });
    const sql = await connectPostgres({ url, max: 2 });
    const locker = await sql.reserve();
    try {
      /** The main pool's connections: all, and those waiting for the gauges' lock. */
      const mainPool = async () => {
        const [row] = await sql`SELECT count(*)::int AS open,
            (count(*) FILTER (WHERE wait_event = 'advisory'))::int AS waiting
          FROM pg_stat_activity WHERE application_name = 'odmr-relay mx-a.test'
            AND query NOT ILIKE 'listen%'`;
        return `${row?.open} open, ${row?.waiting} waiting`;
      };
      await locker`SELECT pg_advisory_lock(${GAUGES_LOCK})`;
      const port = node.listening.find((l) => l.proto === "metrics")?.port;
      const scrapes = Array.from(
        { length: SCRAPES },
        () =>
          fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(20_000) })
            .then(async (r) => (await r.text(), r.status)),
      );
      let seen = "";
      await until("the main pool's connections waiting for the gauges' lock", async () => {
        seen = await mainPool();
        return seen.endsWith(` ${POOL_SIZE} waiting`);
      });
      assert.equal(seen, `${POOL_SIZE} open, ${POOL_SIZE} waiting`, node.logs());
      await locker`SELECT pg_advisory_unlock(${GAUGES_LOCK})`;
      assert.deepEqual(await Promise.all(scrapes), Array(SCRAPES).fill(200));
      // Every scrape was served, on no more connections than pool_size.
      assert.equal(await mainPool(), `${POOL_SIZE} open, 0 waiting`);
    } finally {
      locker.release();
      await sql.end({ timeout: 5 });
      await node.stop();
      await removeTestFiles(node);
    }
  },
);
