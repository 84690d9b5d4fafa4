// What one scrape of the queue gauges costs on PostgreSQL (issue 14): `domainStats()` of the
// PostgreSQL store with Q messages waiting over 100 domains, median of 5 calls, at two queue
// sizes. The queue is filled with set-based INSERTs (every trigger of the schema fires as it
// does for sessions), not through SMTP: the point is the read, not the ingest.

import { PgQueueStore } from "../src/queue/pg/store.ts";
import { connectPostgres } from "../src/queue/pg/connect.ts";
import type { PostgresCluster } from "../tests/_helpers/postgres.ts";
import { naCell, type Table } from "./_table.ts";

const SIZES = [10_000, 100_000];
const DOMAINS = 100;

/** One row per queue size: scrape time, and how long filling the queue took. */
export async function pgGaugeTable(
  cluster: PostgresCluster | undefined,
  scale: number,
): Promise<Table> {
  const table: Table = {
    title: "PostgreSQL gauges: one domainStats() (the /metrics queue gauges) by queue size",
    headers: ["waiting messages", "domainStats ms (median of 5)", "fill msg/s (set-based)"],
    rows: [],
    notes: [
      `${DOMAINS} domains, one recipient each message, 4 KB size; the same private cluster as ` +
      "the table above.",
    ],
  };
  for (const full of SIZES) {
    const q = Math.max(1, Math.floor(full / scale));
    const row = [String(q)];
    try {
      if (cluster === undefined) throw new Error("PostgreSQL (initdb, pg_ctl) not installed");
      const url = await cluster.createDatabase(`gauges_${q}`);
      const store = await PgQueueStore.open({ url, max: 2 }, { nodeId: "bench" });
      try {
        const sql = await connectPostgres({ url, max: 1 });
        const t0 = performance.now();
        try {
          await sql.begin(async (tx) => {
            await tx`INSERT INTO messages (id, received_at, mail_from, size, params)
              SELECT lpad(g::text, 26, '0'), 1700000000000 + g, 's@example.net', 4096, '{}'
              FROM generate_series(1, ${q}) g`;
            await tx`INSERT INTO recipients (message_id, address, domain)
              SELECT lpad(g::text, 26, '0'), 'u@d' || (g % ${DOMAINS}) || '.test',
                'd' || (g % ${DOMAINS}) || '.test'
              FROM generate_series(1, ${q}) g`;
          });
          await sql`ANALYZE`;
        } finally {
          await sql.end({ timeout: 1 });
        }
        const fillRate = q / ((performance.now() - t0) / 1000);
        const times: number[] = [];
        for (let i = 0; i < 5; i++) {
          const s0 = performance.now();
          const stats = await store.domainStats();
          times.push(performance.now() - s0);
          const total = stats.reduce((n, s) => n + s.messages, 0);
          if (total !== q) throw new Error(`domainStats counted ${total} of ${q}`);
        }
        times.sort((a, b) => a - b);
        row.push((times[2] ?? 0).toFixed(1), fillRate.toFixed(0));
      } finally {
        await store.close();
      }
    } catch (e) {
      while (row.length < table.headers.length) row.push(naCell(e));
    }
    table.rows.push(row);
  }
  return table;
}
