/**
 * `/metrics` and `/healthz` of the real `serve` after a scripted day: three messages for two
 * domains, a relay-denied RCPT, a failed AUTH on the ODMR port, one drain by a scripted
 * customer; then a restart keeps the last ATRN success. The exposition is parsed as
 * Prometheus text (tests/observe/_prom_parse.ts), independently of prom-client.
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { writeFetchConfig } from "../_helpers/fetch_process.ts";
import {
  addUser,
  parseListening,
  removeTestFiles,
  REPO_ROOT,
  startServer,
} from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { submit, submitAccepted } from "../_helpers/smtp_submit.ts";
import { parseExposition, valueOf } from "../observe/_prom_parse.ts";
import type { Exposition } from "../observe/_prom_parse.ts";

const enc = new TextEncoder();
const METRICS_CONFIG = { metrics: { listen: "127.0.0.1:0" } };
/** Bound on waiting for a session's last event after the peer saw its last reply. */
const SETTLE_DEADLINE_MS = 5_000;

function metricsPort(server: ServerProcess): number {
  const l = server.listening.find((e) => e.proto === "metrics");
  assert(l !== undefined, `no listening proto=metrics line in:\n${server.logs()}`);
  assertEquals(l.tls, "none");
  return l.port;
}

async function httpGet(port: number, path: string) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    signal: AbortSignal.timeout(5_000),
  });
  return {
    status: res.status,
    type: res.headers.get("content-type") ?? "",
    body: await res.text(),
  };
}

async function scrape(port: number): Promise<Exposition> {
  const r = await httpGet(port, "/metrics");
  assertEquals(r.status, 200);
  assertMatch(r.type, /^text\/plain; version=0\.0\.4/);
  return parseExposition(r.body);
}

/** Scrapes until `ready` holds (a session's end is reported just after its peer's last line). */
async function scrapeUntil(port: number, ready: (e: Exposition) => boolean): Promise<Exposition> {
  const deadline = Date.now() + SETTLE_DEADLINE_MS;
  for (;;) {
    const exp = await scrape(port);
    if (ready(exp) || Date.now() > deadline) return exp;
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("serve /metrics after a scripted day: queue, received, refused, ATRN, auth, delivered", async () => {
  const server = await startServer({ config: METRICS_CONFIG });
  let restarted: ServerProcess | undefined;
  try {
    const port = metricsPort(server);
    assertEquals(await httpGet(port, "/healthz").then((r) => [r.status, r.body]), [200, "ok\n"]);
    assertEquals((await httpGet(port, "/nothing")).status, 404);
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    await addUser(server.configPath, "bob", ["bob.example"], "bob-pw");

    const smtp = server.smtp[0]!; // startServer waited for the smtp listener
    const body = enc.encode("Subject: metrics\r\n\r\nhello\r\n");
    const sent = [
      await submit({ port: smtp.port, from: "a@remote.test", to: ["x@example.org"], body }),
      await submit({
        port: smtp.port,
        from: "b@remote.test",
        to: ["y@example.org", "z@not-ours.test"],
        body,
      }),
      await submit({ port: smtp.port, from: "c@remote.test", to: ["w@bob.example"], body }),
    ];
    for (const s of sent) assertMatch(s.final ?? "", /^250 /);
    assert(sent[1]!.replies.some((l) => l.startsWith("550 5.7.1")), "foreign RCPT refused");

    const before = await scrape(port);
    const v = (e: Exposition, name: string, labels: Record<string, string> = {}) =>
      valueOf(e, `odmr_relay_${name}`, labels);
    assertEquals(v(before, "queue_messages", { domain: "example.org" }), 2);
    assertEquals(v(before, "queue_messages", { domain: "bob.example" }), 1);
    assert((v(before, "queue_bytes", { domain: "example.org" }) ?? 0) > 2 * body.length);
    assert((v(before, "queue_oldest_seconds", { domain: "example.org" }) ?? -1) >= 0);
    assertEquals(v(before, "messages_received_total", { domain: "example.org" }), 2);
    assertEquals(v(before, "messages_received_total", { domain: "bob.example" }), 1);
    assertEquals(v(before, "rcpt_rejected_total", { reason: "relay_denied" }), 1);
    assertEquals(v(before, "ingest_latency_seconds_count"), 3);
    assertEquals(v(before, "queue_messages", { domain: "not-ours.test" }), undefined);

    const failed = await runScriptedCustomer({
      port: server.odmr[0]!.port,
      auth: { mechanism: "CRAM-MD5", user: "alice", password: "wrong" },
      atrn: "",
    });
    assertMatch(failed.authReply ?? "", /^535 /);
    assertMatch(failed.atrnReply ?? "", /^530 /);

    const startedAt = Date.now() / 1000;
    const drained = await runScriptedCustomer({
      port: server.odmr[0]!.port,
      auth: { mechanism: "CRAM-MD5", user: "alice", password: "alice-pw" },
      atrn: "example.org",
    });
    assertMatch(drained.atrnReply ?? "", /^250 /);
    assertEquals(drained.messages.length, 2);

    const after = await scrapeUntil(
      port,
      (e) =>
        v(e, "last_atrn_success_timestamp_seconds", { user: "alice" }) !== undefined &&
        v(e, "connections", { proto: "odmr" }) === 0,
    );
    assertEquals(v(after, "queue_messages", { domain: "example.org" }), 0);
    assertEquals(v(after, "queue_bytes", { domain: "example.org" }), 0);
    assertEquals(v(after, "queue_messages", { domain: "bob.example" }), 1);
    assertEquals(v(after, "messages_delivered_total", { domain: "example.org" }), 2);
    assertEquals(v(after, "atrn_total", { user: "alice", outcome: "250" }), 1);
    assertEquals(v(after, "atrn_total", { user: "", outcome: "535" }), 1);
    assertEquals(v(after, "atrn_total", { user: "", outcome: "530" }), 1);
    assertEquals(v(after, "auth_failures_total", { mechanism: "CRAM-MD5" }), 1);
    assertEquals(v(after, "drain_duration_seconds_count"), 1);
    assertEquals(v(after, "connections", { proto: "odmr" }), 0);
    const last = v(after, "last_atrn_success_timestamp_seconds", { user: "alice" }) ?? 0;
    assert(last >= Math.floor(startedAt) && last <= Date.now() / 1000 + 1, `last=${last}`);
    assertEquals(v(after, "last_atrn_success_timestamp_seconds", { user: "bob" }), undefined);

    assertEquals(await server.stop(), 0);
    restarted = await startServer({ config: METRICS_CONFIG, dataDir: server.dataDir });
    const again = await scrape(metricsPort(restarted));
    assertEquals(v(again, "last_atrn_success_timestamp_seconds", { user: "alice" }), last);
    assertEquals(v(again, "queue_messages", { domain: "bob.example" }), 1);
    assertEquals(v(again, "messages_delivered_total", { domain: "example.org" }), undefined);
  } finally {
    await server.stop();
    if (restarted !== undefined) await restarted.stop();
    await removeTestFiles(server);
  }
});

Deno.test("serve without metrics.listen opens no metrics listener", async () => {
  const server = await startServer();
  try {
    assertEquals(server.listening.filter((l) => l.proto === "metrics"), []);
  } finally {
    await server.stop();
    await removeTestFiles(server);
  }
});

/** Starts `fetch` in loop mode; resolves once it logged its metrics listener. */
async function startFetchLoop(configPath: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}main.ts`, "fetch", "--config", configPath],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let output = "";
  const reader = child.stderr.getReader();
  const pump = (async () => {
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      output += dec.decode(value, { stream: true });
    }
  })();
  const deadline = Date.now() + 30_000;
  let port: number | undefined;
  while (port === undefined && Date.now() < deadline) {
    port = parseListening(output).find((l) => l.proto === "metrics")?.port;
    if (port === undefined) await new Promise((r) => setTimeout(r, 50));
  }
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    const status = await child.status;
    await pump;
    return status.code;
  };
  if (port === undefined) {
    await stop();
    throw new Error(`fetch logged no metrics listener within 30 s:\n${output}`);
  }
  return { port, stop, logs: () => output };
}

Deno.test("fetch in loop mode serves its own /metrics: delivered, last success, failures", async () => {
  const server = await startServer();
  const dir = await Deno.makeTempDir({ prefix: "odmr-fetch-metrics-" });
  try {
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    const body = enc.encode("Subject: fetch metrics\r\n\r\nhi\r\n");
    await submitAccepted({
      port: server.smtp[0]!.port, // startServer waited for it
      from: "a@remote.test",
      to: ["x@example.org"],
      body,
    });
    const configPath = await writeFetchConfig(dir, {
      server: `127.0.0.1:${server.odmr[0]!.port}`,
      "deliver_to": `maildir:${dir}/Maildir`,
      interval: "1h",
    }, {
      hostname: "pi.test",
      "data_dir": `${dir}/data`,
      metrics: { listen: "127.0.0.1:0" },
    });
    const fetch = await startFetchLoop(configPath);
    let code: number | undefined;
    try {
      const exp = await scrapeUntil(
        fetch.port,
        // 0 until the first success: "never", which alerts on the age like a stale timestamp.
        (e) => (valueOf(e, "odmr_relay_fetch_last_success_timestamp_seconds") ?? 0) > 0,
      );
      assertEquals(valueOf(exp, "odmr_relay_fetch_delivered_total"), 1, fetch.logs());
      assert((valueOf(exp, "odmr_relay_fetch_last_success_timestamp_seconds") ?? 0) > 0);
      assertEquals(valueOf(exp, "odmr_relay_fetch_failures_total", { reason: "temporary" }), 0);
      assertEquals((await httpGet(fetch.port, "/healthz")).status, 200);
    } finally {
      code = await fetch.stop();
    }
    assertEquals(code, 0, fetch.logs());
  } finally {
    await server.stop();
    await removeTestFiles(server);
    await Deno.remove(dir, { recursive: true });
  }
});
