/**
 * RelayMetrics and FetchMetrics: the exposition parsed as Prometheus text, the README.md
 * names, types and labels, and bounded label sets (foreign domains, unknown reasons).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { FetchMetrics, OTHER_DOMAIN, RelayMetrics } from "../../src/observe/metrics.ts";
import type { DomainQueueStats, UserDomains } from "../../src/observe/metrics.ts";
import type { OdmrEvents } from "../../src/odmr/events.ts";
import type { SmtpEvents } from "../../src/smtp/events.ts";
import { rcptRejectLabel } from "../../src/smtp/events.ts";
import { parseExposition, samplesOf, valueOf } from "./_prom_parse.ts";

const T0 = Date.UTC(2026, 0, 1);

function fixture(opts: { stats?: DomainQueueStats[]; saved?: Map<string, number> } = {}) {
  let now = T0;
  const users: UserDomains[] = [
    { name: "alice", domains: ["example.org", "example.com"] },
    { name: "bob", domains: ["bob.example"] },
  ];
  const recorded: [string, number][] = [];
  const metrics = new RelayMetrics({
    users: () => users,
    domainStats: () => opts.stats ?? [],
    atrnState: {
      recordAtrnSuccess: (user, at) => recorded.push([user, at]),
      lastAtrnSuccesses: () => opts.saved ?? new Map(),
    },
    now: () => now,
  });
  return {
    metrics,
    users,
    recorded,
    advance: (ms: number) => (now += ms),
    scrape: async () => parseExposition(await metrics.expose()),
  };
}

Deno.test("RelayMetrics exposes every README.md metric with its type", async () => {
  const f = fixture({
    stats: [{ domain: "example.org", route: "atrn", messages: 1, bytes: 10, oldestReceivedAt: T0 }],
  });
  f.metrics.odmr.atrn("alice", "250");
  f.metrics.odmr.authFailure("CRAM-MD5");
  f.metrics.odmr.delivered("example.org");
  f.metrics.odmr.drainFinished("alice", 1);
  f.metrics.smtp.messageQueued({ domains: ["example.org"], bytes: 10, commitSeconds: 0.01 });
  const exp = await f.scrape();
  const want: [string, string][] = [
    ["odmr_relay_queue_messages", "gauge"],
    ["odmr_relay_queue_bytes", "gauge"],
    ["odmr_relay_queue_oldest_seconds", "gauge"],
    ["odmr_relay_messages_received_total", "counter"],
    ["odmr_relay_messages_delivered_total", "counter"],
    ["odmr_relay_rcpt_rejected_total", "counter"],
    ["odmr_relay_atrn_total", "counter"],
    ["odmr_relay_last_atrn_success_timestamp_seconds", "gauge"],
    ["odmr_relay_auth_failures_total", "counter"],
    ["odmr_relay_connections", "gauge"],
    ["odmr_relay_bytes_received_total", "counter"],
    ["odmr_relay_messages_refused_total", "counter"],
    ["odmr_relay_ingest_latency_seconds", "histogram"],
    ["odmr_relay_drain_duration_seconds", "histogram"],
  ];
  for (const [name, type] of want) assertEquals([name, exp.types.get(name)], [name, type]);
  // No default process metrics: they read /proc, which `deno task start` does not grant.
  assert(![...exp.types.keys()].some((n) => !n.startsWith("odmr_relay_")));
});

Deno.test("RelayMetrics counts a scripted day per domain, user, outcome and reason", async () => {
  const f = fixture();
  const smtp: SmtpEvents = f.metrics.smtp;
  const odmr: OdmrEvents = f.metrics.odmr;
  smtp.messageQueued({ domains: ["example.org", "bob.example"], bytes: 100, commitSeconds: 0.002 });
  smtp.messageQueued({ domains: ["example.org"], bytes: 50, commitSeconds: 0.004 });
  smtp.rcptRejected(rcptRejectLabel("relay"));
  smtp.rcptRejected(rcptRejectLabel("limit"));
  smtp.messageRefused("storage_full");
  odmr.authFailure("CRAM-MD5");
  odmr.atrn("", "530");
  odmr.atrn("alice", "250");
  f.advance(2_000);
  odmr.delivered("example.org");
  odmr.delivered("example.org");
  odmr.drainFinished("alice", 2);
  odmr.atrn("bob", "453");
  f.metrics.connectionOpened("smtp");
  f.metrics.connectionOpened("smtp");
  f.metrics.connectionClosed("smtp");
  const exp = await f.scrape();
  const v = (name: string, labels: Record<string, string> = {}) => valueOf(exp, name, labels);
  assertEquals(v("odmr_relay_messages_received_total", { domain: "example.org" }), 2);
  assertEquals(v("odmr_relay_messages_received_total", { domain: "bob.example" }), 1);
  assertEquals(v("odmr_relay_bytes_received_total", { domain: "example.org" }), 150);
  assertEquals(v("odmr_relay_rcpt_rejected_total", { reason: "relay_denied" }), 1);
  assertEquals(v("odmr_relay_rcpt_rejected_total", { reason: "too_many_recipients" }), 1);
  assertEquals(v("odmr_relay_rcpt_rejected_total", { reason: "quota" }), 0);
  assertEquals(v("odmr_relay_messages_refused_total", { reason: "storage_full" }), 1);
  assertEquals(v("odmr_relay_auth_failures_total", { mechanism: "CRAM-MD5" }), 1);
  assertEquals(v("odmr_relay_atrn_total", { user: "", outcome: "535" }), 1);
  assertEquals(v("odmr_relay_atrn_total", { user: "", outcome: "530" }), 1);
  assertEquals(v("odmr_relay_atrn_total", { user: "alice", outcome: "250" }), 1);
  assertEquals(v("odmr_relay_atrn_total", { user: "bob", outcome: "453" }), 1);
  assertEquals(v("odmr_relay_messages_delivered_total", { domain: "example.org" }), 2);
  assertEquals(v("odmr_relay_ingest_latency_seconds_count"), 2);
  assertEquals(v("odmr_relay_drain_duration_seconds_count"), 1);
  assertEquals(v("odmr_relay_drain_duration_seconds_sum"), 2);
  assertEquals(v("odmr_relay_connections", { proto: "smtp" }), 1);
  assertEquals(v("odmr_relay_connections", { proto: "odmr" }), 0);
  const last = (T0 + 2_000) / 1000;
  assertEquals(v("odmr_relay_last_atrn_success_timestamp_seconds", { user: "alice" }), last);
  // 453 "no mail" is a collection too: the customer is alive and up to date.
  assertEquals(v("odmr_relay_last_atrn_success_timestamp_seconds", { user: "bob" }), last);
  assertEquals(f.recorded, [["alice", T0 + 2_000], ["bob", T0 + 2_000]]);
});

Deno.test("RelayMetrics queue gauges: owned domains by name, zero when empty, the rest as other", async () => {
  const f = fixture({
    stats: [
      {
        domain: "example.org",
        route: "atrn",
        messages: 2,
        bytes: 300,
        oldestReceivedAt: T0 - 60_000,
      },
      {
        domain: "gone.example",
        route: "atrn",
        messages: 1,
        bytes: 10,
        oldestReceivedAt: T0 - 120_000,
      },
      {
        domain: "gone2.example",
        route: "atrn",
        messages: 4,
        bytes: 40,
        oldestReceivedAt: T0 - 5_000,
      },
    ],
  });
  const exp = await f.scrape();
  const domains = samplesOf(exp, "odmr_relay_queue_messages").map((s) => s.labels.domain).sort();
  assertEquals(domains, ["bob.example", "example.com", "example.org", OTHER_DOMAIN]);
  const v = (name: string, domain: string) => valueOf(exp, name, { domain });
  assertEquals(v("odmr_relay_queue_messages", "example.org"), 2);
  assertEquals(v("odmr_relay_queue_bytes", "example.org"), 300);
  assertEquals(v("odmr_relay_queue_oldest_seconds", "example.org"), 60);
  assertEquals(v("odmr_relay_queue_messages", "bob.example"), 0);
  assertEquals(v("odmr_relay_queue_oldest_seconds", "bob.example"), 0);
  assertEquals(v("odmr_relay_queue_messages", OTHER_DOMAIN), 5);
  assertEquals(v("odmr_relay_queue_bytes", OTHER_DOMAIN), 50);
  assertEquals(v("odmr_relay_queue_oldest_seconds", OTHER_DOMAIN), 120);
});

Deno.test("RelayMetrics shows last ATRN success saved before a restart, for existing users only", async () => {
  const saved = new Map([["alice", T0 - 3_600_000], ["removed-user", T0 - 1_000]]);
  const f = fixture({ saved });
  const exp = await f.scrape();
  const users = samplesOf(exp, "odmr_relay_last_atrn_success_timestamp_seconds")
    .map((s) => [s.labels.user, s.value]);
  assertEquals(users, [["alice", (T0 - 3_600_000) / 1000]]);
});

Deno.test("RelayMetrics keeps label sets fixed: unknown reasons count as other", async () => {
  const f = fixture();
  f.metrics.smtp.rcptRejected("made-up" as never);
  f.metrics.smtp.messageRefused("made-up" as never);
  const exp = await f.scrape();
  assertEquals(valueOf(exp, "odmr_relay_rcpt_rejected_total", { reason: "other" }), 1);
  assertEquals(valueOf(exp, "odmr_relay_messages_refused_total", { reason: "local_error" }), 1);
  assertEquals(samplesOf(exp, "odmr_relay_rcpt_rejected_total").length, 7);
});

Deno.test("rcptRejectLabel maps the queue sink's words onto the fixed label set", () => {
  const rows: [string, string][] = [
    ["relay", "relay_denied"],
    ["routing", "routing"],
    ["literal", "address_literal"],
    ["postmaster", "postmaster"],
    ["limit", "too_many_recipients"],
    ["quota", "quota"],
    ["anything else", "other"],
  ];
  for (const [word, label] of rows) assertEquals(rcptRejectLabel(word), label);
});

Deno.test("RelayMetrics still serves counters when the database cannot be read", async () => {
  const metrics = new RelayMetrics({
    users: () => {
      throw new Error("database is closed");
    },
    domainStats: () => [],
  });
  metrics.odmr.authFailure("PLAIN");
  const exp = parseExposition(await metrics.expose());
  assertEquals(valueOf(exp, "odmr_relay_auth_failures_total", { mechanism: "PLAIN" }), 1);
  assertEquals(samplesOf(exp, "odmr_relay_queue_messages"), []);
});

Deno.test("FetchMetrics counts deliveries, the last success and failures by reason", async () => {
  let now = T0;
  const m = new FetchMetrics({ now: () => now });
  m.recordPoll({ exitCode: 0, result: "delivered", delivered: 3 });
  now += 60_000;
  m.recordPoll({ exitCode: 5, result: "temporary", delivered: 1 });
  m.recordPoll({ exitCode: 3, result: "authFailed", delivered: 0 });
  m.recordPoll({ exitCode: 0, result: "noMail", delivered: 0 });
  const exp = parseExposition(await m.expose());
  assertEquals(valueOf(exp, "odmr_relay_fetch_delivered_total"), 4);
  assertEquals(valueOf(exp, "odmr_relay_fetch_last_success_timestamp_seconds"), now / 1000);
  assertEquals(valueOf(exp, "odmr_relay_fetch_failures_total", { reason: "temporary" }), 1);
  assertEquals(valueOf(exp, "odmr_relay_fetch_failures_total", { reason: "auth_failed" }), 1);
  assertEquals(valueOf(exp, "odmr_relay_fetch_failures_total", { reason: "refused" }), 0);
});

Deno.test("parseExposition rejects a malformed sample line", () => {
  let threw = false;
  try {
    parseExposition('x{a="1" 2\n');
  } catch {
    threw = true;
  }
  assert(threw);
});

Deno.test("RelayMetrics counts expired recipients and what became of their failure reports", async () => {
  const f = fixture();
  let exp = await f.scrape();
  assertEquals(valueOf(exp, "odmr_relay_recipients_expired_total"), 0);
  assertEquals(valueOf(exp, "odmr_relay_dsn_total", { outcome: "dropped" }), 0);
  f.metrics.maintenance({ expiredRecipients: 3, dsnQueued: 1, dsnDropped: 1 });
  f.metrics.maintenance({ expiredRecipients: 2, dsnQueued: 0, dsnDropped: 2 });
  exp = await f.scrape();
  assertEquals(valueOf(exp, "odmr_relay_recipients_expired_total"), 5);
  assertEquals(valueOf(exp, "odmr_relay_dsn_total", { outcome: "queued" }), 1);
  assertEquals(valueOf(exp, "odmr_relay_dsn_total", { outcome: "dropped" }), 3);
});

Deno.test("RelayMetrics outbound: gauges per destination (route mx only), deliveries by outcome", async () => {
  const mx = (domain: string, messages: number, ageMs: number): DomainQueueStats => ({
    domain,
    route: "mx",
    messages,
    bytes: messages * 10,
    oldestReceivedAt: T0 - ageMs,
  });
  const f = fixture({
    stats: [
      mx("gmail.example", 3, 90_000),
      mx("example.org", 1, 30_000),
      { domain: "example.org", route: "atrn", messages: 7, bytes: 70, oldestReceivedAt: T0 },
    ],
  });
  let exp = await f.scrape();
  const v = (name: string, labels: Record<string, string>) => valueOf(exp, name, labels);
  assertEquals(exp.types.get("odmr_relay_outbound_queue_messages"), "gauge");
  assertEquals(exp.types.get("odmr_relay_outbound_queue_oldest_seconds"), "gauge");
  assertEquals(exp.types.get("odmr_relay_outbound_deliveries_total"), "counter");
  assertEquals(v("odmr_relay_outbound_queue_messages", { domain: "gmail.example" }), 3);
  assertEquals(v("odmr_relay_outbound_queue_oldest_seconds", { domain: "gmail.example" }), 90);
  // The same domain on both routes: each gauge family sees its own route only.
  assertEquals(v("odmr_relay_outbound_queue_messages", { domain: "example.org" }), 1);
  assertEquals(v("odmr_relay_queue_messages", { domain: "example.org" }), 7);
  // Every outcome is there from the start, at 0.
  for (const outcome of ["delivered", "deferred", "failed"]) {
    assertEquals(v("odmr_relay_outbound_deliveries_total", { outcome }), 0);
  }
  f.metrics.outbound.delivery("delivered");
  f.metrics.outbound.delivery("delivered");
  f.metrics.outbound.delivery("deferred");
  exp = await f.scrape();
  assertEquals(v("odmr_relay_outbound_deliveries_total", { outcome: "delivered" }), 2);
  assertEquals(v("odmr_relay_outbound_deliveries_total", { outcome: "deferred" }), 1);
  assertEquals(v("odmr_relay_outbound_deliveries_total", { outcome: "failed" }), 0);
});

Deno.test("RelayMetrics outbound gauges: 100 destinations by name, the 101st as other", async () => {
  const stats = (n: number) =>
    Array.from({ length: n }, (_, i): DomainQueueStats => ({
      domain: `d${i}.example`,
      route: "mx",
      // d0 has the most messages, so the smallest are the ones summed.
      messages: 1000 - i,
      bytes: 1,
      oldestReceivedAt: T0 - i * 1000,
    }));
  const at100 = await fixture({ stats: stats(100) }).scrape();
  const names100 = samplesOf(at100, "odmr_relay_outbound_queue_messages").map((s) =>
    s.labels.domain
  );
  assertEquals(names100.length, 100);
  assert(!names100.includes(OTHER_DOMAIN));
  const at101 = await fixture({ stats: stats(101) }).scrape();
  const names101 = samplesOf(at101, "odmr_relay_outbound_queue_messages").map((s) =>
    s.labels.domain
  );
  assertEquals(names101.length, 101);
  assert(!names101.includes("d100.example") && names101.includes("d99.example"));
  const other = (name: string) => valueOf(at101, name, { domain: OTHER_DOMAIN });
  assertEquals(other("odmr_relay_outbound_queue_messages"), 900);
  assertEquals(other("odmr_relay_outbound_queue_oldest_seconds"), 100);
});
