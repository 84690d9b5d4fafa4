/**
 * SIGTERM or SIGINT while `serve` is still starting (its queue not open yet: here a PostgreSQL
 * that went silent after its handshake, which serve waits on up to 20 s) ends it at once with
 * exit 0, as after start-up (CONTRACT: serve exits 0 on SIGINT/SIGTERM, within the grace plus
 * one second): nothing has been acknowledged yet. Before, serve listened for them only once its
 * listeners were bound, and the signal's default ended it: exit 143 or 130, a failure to a
 * script or a supervisor. Each run reaches the database through a proxy of its own that stalls
 * serve's first query; the signal goes once it did.
 */
import assert from "node:assert/strict";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { postgresNodeConfig } from "../_helpers/postgres_nodes.ts";
import { startPostgresProxy } from "../_helpers/postgres_proxy.ts";
import { removeTestFiles, REPO_ROOT, writeTestConfig } from "../_helpers/server_process.ts";

/** CONTRACT: the grace period (10 s) plus one second. */
const STOP_WITHIN_MS = 11_000;

await postgresTest(
  "serve stopped by SIGTERM or SIGINT while it starts exits 0 at once (contract)",
  async (pg) => {
    const url = await pg.createDatabase("start_signal");
    await (await PgQueueStore.open({ url }, { nodeId: "setup" })).close();
    await Promise.all((["SIGTERM", "SIGINT"] as const).map(async (signal) => {
      const proxy = await startPostgresProxy(pg.port);
      const files = await writeTestConfig({
        config: postgresNodeConfig("mx-a.test", proxy.via(url)),
      });
      try {
        const stalled = proxy.stallWhenSent("SELECT 1 AS one");
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", `${REPO_ROOT}main.ts`, "serve", "--config", files.configPath],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          env: { NO_COLOR: "1" },
        }).spawn();
        const killer = setTimeout(() => child.kill("SIGKILL"), 40_000);
        try {
          const first = await Promise.race([
            stalled.then(() => "stalled"),
            child.status.then((s) => `ended with ${s.code} before its first query`),
          ]);
          assert.equal(first, "stalled");
          const sent = performance.now();
          child.kill(signal);
          const out = await child.output();
          const tookMs = Math.round(performance.now() - sent);
          const log = new TextDecoder().decode(out.stderr);
          const what = `${signal} (${tookMs} ms):\n${log}`;
          assert.deepEqual({ code: out.code, signal: out.signal }, { code: 0, signal: null }, what);
          assert.ok(tookMs < STOP_WITHIN_MS, what);
          assert.match(log, new RegExp(`event=stopping signal=${signal}\\b`), what);
          assert.doesNotMatch(log, /Uncaught|^\s+at /m, what);
        } finally {
          clearTimeout(killer);
        }
      } finally {
        await proxy.close();
        await removeTestFiles(files);
      }
    }));
  },
);
