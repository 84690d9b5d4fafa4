// The PostgreSQL backend beside SQLite (issue 14): the same `serve` ingesting N × 4 KB from
// smtp-source (10 sessions, one message per connection) and then draining them over one ATRN
// session to bench/_null_customer.ts, once on SQLite and once on a private PostgreSQL cluster
// (tests/_helpers/postgres.ts: initdb + pg_ctl on a temp dir, removed afterwards). Then what one
// scrape of the queue gauges costs on PostgreSQL by queue size (bench/_pg_gauges.ts).

import { findPostgresBin, startCluster } from "../tests/_helpers/postgres.ts";
import { BENCH_DOMAIN, type BenchContext } from "./ingest.ts";
import { pgGaugeTable } from "./_pg_gauges.ts";
import { drainWithNullCustomer } from "./drain.ts";
import { Serve } from "./_serve.ts";
import { runSource } from "./_smtp_source.ts";
import { fmtRate, fmtRatio, naCell, type Table } from "./_table.ts";

const N = 2000;
const KB = 1024;

/** Runs the benchmark; one table. */
export async function postgresBench(ctx: BenchContext): Promise<Table[]> {
  const n = Math.floor(N / ctx.scale);
  const table: Table = {
    title: `Queue backends: ingest and drain of ${n} × 4 KB`,
    headers: ["backend", "ingest msg/s (s10-4k)", "drain msg/s (null customer)", "drain vs SQLite"],
    rows: [],
    notes: [
      "Same machine, same run: the database server competes for the same 2 CPUs and disk. " +
      "PostgreSQL: a private cluster (fsync on, synchronous_commit on) on 127.0.0.1.",
    ],
  };
  const bin = await findPostgresBin();
  const cluster = bin === undefined ? undefined : await startCluster(bin);
  if (cluster !== undefined) ctx.defer(() => cluster.stop());
  let sqliteDrain: number | undefined;
  for (const backend of ["sqlite", "postgres"] as const) {
    const row: string[] = [backend];
    try {
      if (backend === "postgres" && cluster === undefined) {
        throw new Error("PostgreSQL (initdb, pg_ctl) not installed");
      }
      const url = backend === "postgres" && cluster !== undefined
        ? await cluster.createDatabase("bench")
        : "";
      const serve = await Serve.start({
        dir: ctx.dir,
        domain: BENCH_DOMAIN,
        name: backend,
        ...(backend === "postgres"
          ? { queueYaml: `queue:\n  backend: postgres\n  postgres: {url: "${url}"}\n` }
          : {}),
      });
      ctx.defer(() => serve.stop());
      const ingest = await runSource(serve.smtpPort, { sessions: 10, messages: n, bytes: 4 * KB }, {
        rcpt: `rcpt@${BENCH_DOMAIN}`,
        timeoutMs: 30_000 + n * 50,
      });
      row.push(fmtRate(ingest.msgPerSec));
      const drained = await drainWithNullCustomer(serve, n, 30_000 + n * 50);
      if (!drained.ok) throw new Error(drained.reason);
      const rate = drained.msgPerSec;
      row.push(fmtRate(rate));
      if (backend === "sqlite") sqliteDrain = rate;
      row.push(backend === "sqlite" ? "1×" : fmtRatio(rate, sqliteDrain));
      await serve.stop();
    } catch (e) {
      while (row.length < table.headers.length) row.push(naCell(e));
    }
    table.rows.push(row);
  }
  return [table, await pgGaugeTable(cluster, ctx.scale)];
}
