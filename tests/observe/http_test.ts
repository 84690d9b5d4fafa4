/**
 * The metrics HTTP server: `/metrics` with the Prometheus content type, `/healthz` 200 `ok` or
 * 503 with a reason, 404/405 otherwise; and, in process through `serve`'s startServer, `/healthz`
 * turning 503 when the database stops answering.
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { startMetricsServer } from "../../src/observe/http.ts";
import { RelayMetrics } from "../../src/observe/metrics.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { startServer } from "../../src/cli/serve.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { UserStateStore } from "../../src/queue/user_state.ts";
import { CredentialStore } from "../../src/auth/store.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { parseExposition, valueOf } from "./_prom_parse.ts";

async function get(
  port: number,
  path: string,
  method = "GET",
): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    signal: AbortSignal.timeout(5_000),
  });
  return {
    status: res.status,
    type: res.headers.get("content-type") ?? "",
    body: await res.text(),
  };
}

Deno.test("metrics server answers /metrics, /healthz, and 404/405 for anything else", async () => {
  let reason: string | undefined;
  const metrics = new RelayMetrics({ users: () => [], domainStats: () => [] });
  metrics.odmr.authFailure("CRAM-MD5");
  const server = await startMetricsServer({
    host: "127.0.0.1",
    port: 0,
    metrics,
    health: () => reason,
  });
  try {
    assertMatch(server.address, /^127\.0\.0\.1:\d+$/);
    const m = await get(server.port, "/metrics");
    assertEquals(m.status, 200);
    assertMatch(m.type, /^text\/plain; version=0\.0\.4/);
    const exp = parseExposition(m.body);
    assertEquals(valueOf(exp, "odmr_relay_auth_failures_total", { mechanism: "CRAM-MD5" }), 1);

    assertEquals(await get(server.port, "/healthz"), {
      status: 200,
      type: "text/plain; charset=utf-8",
      body: "ok\n",
    });
    reason = "database not answering:\nclosed";
    const down = await get(server.port, "/healthz");
    assertEquals([down.status, down.body], [503, "database not answering: closed\n"]);

    assertEquals((await get(server.port, "/")).status, 404);
    assertEquals((await get(server.port, "/metrics/x")).status, 404);
    assertEquals((await get(server.port, "/metrics", "POST")).status, 405);
  } finally {
    await server.close();
  }
});

Deno.test("metrics server reports a port that cannot be bound", async () => {
  const first = await startMetricsServer({
    host: "127.0.0.1",
    port: 0,
    metrics: { contentType: "text/plain", expose: () => Promise.resolve("") },
  });
  try {
    let failed = false;
    await startMetricsServer({
      host: "127.0.0.1",
      port: first.port,
      metrics: { contentType: "text/plain", expose: () => Promise.resolve("") },
    }).then((s) => s.close(), () => (failed = true));
    assertEquals(failed, true);
  } finally {
    await first.close();
  }
});

Deno.test("serve's /healthz is 200 while the database answers and 503 once it is closed", async () => {
  await withTempDataDir(async (dataDir) => {
    const config = parseConfig(
      [
        `data_dir: ${JSON.stringify(dataDir)}`,
        `hostname: mx.test`,
        `smtp: {listen: ["127.0.0.1:0"]}`,
        `odmr: {listen: ["127.0.0.1:0"]}`,
        `metrics: {listen: "127.0.0.1:0"}`,
      ].join("\n"),
      { source: "test.yaml", baseDir: dataDir, systemHostname: () => "mx.test" },
    );
    const db = openDatabase(dataDir);
    const store = new SqliteQueueStore(db, { logger: NULL_LOGGER });
    const credentials = new CredentialStore(db);
    const userState = new UserStateStore(db);
    const metrics = new RelayMetrics({
      users: () => credentials.listUsers(),
      domainStats: () => store.domainStats(),
      atrnState: userState,
    });
    const server = await startServer({
      config,
      store,
      credentials,
      log: NULL_LOGGER,
      secureContext: undefined,
      observe: { metrics, pingDatabase: () => store.ping() },
    });
    try {
      const bound = server.listeners.find((l) => l.proto === "metrics");
      assertEquals(bound?.tls, "none");
      const port = Number(bound?.address.split(":").at(-1));
      assertEquals(await get(port, "/healthz").then((r) => [r.status, r.body]), [200, "ok\n"]);
      await store.close();
      const down = await get(port, "/healthz");
      assertEquals(down.status, 503);
      assertMatch(down.body, /^database not answering: .+\n$/);
      // Counters still come out; the queue gauges are left out rather than failing the scrape.
      assertEquals((await get(port, "/metrics")).status, 200);
    } finally {
      await server.stop(0);
      await store.close();
    }
  });
});
