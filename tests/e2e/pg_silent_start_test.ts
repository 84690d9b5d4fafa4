/**
 * On a PostgreSQL that completes its handshake and then answers nothing more (a pooler waiting
 * for a server, a route gone silent), `serve` fails to start and the `queue`, `user list` and
 * `dkim` commands fail, each within its deadline (the calls' 10 s; serve's first query 20 s: the
 * connect timeout, then 10 s), with one line saying why and exit 1 (README "Exit codes": a
 * runtime failure). Before, each waited for good (killed here at 40 s). Each process reaches the database through a proxy of its own that stalls the
 * connection its first query of that kind goes out on (the four run at once).
 */
import assert from "node:assert/strict";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { postgresNodeConfig } from "../_helpers/postgres_nodes.ts";
import { startPostgresProxy } from "../_helpers/postgres_proxy.ts";
import { removeTestFiles, runMain, writeTestConfig } from "../_helpers/server_process.ts";

/** Each process: its command, the query text that stalls it, and the line it must print. */
const RUNS: readonly (readonly [readonly string[], string, RegExp])[] = [
  [
    ["serve"],
    "SELECT 1 AS one",
    /event=startup_failed reason="Cannot open the queue in PostgreSQL: Cannot connect to PostgreSQL \\"odmr@127\.0\.0\.1:\d+\/silent_start\\": first query: no answer from PostgreSQL within 20000 ms/,
  ],
  [
    ["queue", "summary"],
    "AS bucket",
    /^error: .*: queue ages: no answer from PostgreSQL within 10000 ms \(connection silent\?\)$/,
  ],
  [
    ["user", "list"],
    "last_atrn_success::float8 AS at",
    /^error: .*: last collections: no answer from PostgreSQL within 10000 ms/,
  ],
  [
    ["dkim", "list"],
    "ORDER BY domain COLLATE",
    /^error: Cannot manage DKIM keys in the database .*: DKIM key list: no answer from PostgreSQL within 10000 ms/,
  ],
];

await postgresTest(
  "serve's start, queue, user list and dkim fail within the deadline, exit 1 with one line, on a PostgreSQL silent after its handshake (#13)",
  async (pg) => {
    const url = await pg.createDatabase("silent_start");
    await (await PgQueueStore.open({ url }, { nodeId: "setup" })).close();
    await Promise.all(RUNS.map(async ([args, stalledAt, line]) => {
      const proxy = await startPostgresProxy(pg.port);
      const files = await writeTestConfig({
        config: postgresNodeConfig("mx-a.test", proxy.via(url)),
      });
      try {
        let isStalled = false;
        void proxy.stallWhenSent(stalledAt).then(() => isStalled = true);
        const started = performance.now();
        const r = await runMain([...args, "--config", files.configPath], {
          signal: AbortSignal.timeout(40_000),
        });
        const tookMs = Math.round(performance.now() - started);
        const out = r.stdout + r.stderr;
        const what = `${args.join(" ")} (${tookMs} ms):\n${out}`;
        assert.ok(isStalled, `stalled at "${stalledAt}": ${what}`);
        assert.equal(r.code, 1, what);
        const lines = out.split("\n").filter((l) => /startup_failed|^error: /.test(l));
        assert.equal(lines.length, 1, what);
        assert.match(lines[0] ?? "", line, what);
        assert.doesNotMatch(out, /Uncaught|^\s+at /m, what);
      } finally {
        await proxy.close();
        await removeTestFiles(files);
      }
    }));
  },
);
