/**
 * Broken opportunistic TLS at an MX, through the real `serve` (queue, outbound worker, batch):
 * submitted mail for an MX whose STARTTLS handshake fails, and for one whose TLS session hangs
 * up at the first MAIL under TLS, waits for its retry (as Postfix, no plaintext at a message's
 * first attempt; the test's retry step is 1 s) and then arrives in plaintext, each message
 * exactly once, and nothing stays queued (`outbound.tls: opportunistic`, the default). Real
 * peers: dnsmasq as `outbound.resolver` and byte-exact capture servers on 127.x.y.58-59:25
 * (loopback()).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type CaptureServer, startCaptureServer } from "../_helpers/capture_smtp.ts";
import { allEvents, type LogEvent } from "../_helpers/log_lines.ts";
import {
  loopback,
  outboundServeConfig,
  startMxDns,
  submissionPort,
  tlsMxTest,
} from "../_helpers/outbound_world.ts";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { until } from "../_helpers/wait_until.ts";
import { numbered, subjectOf, submitAll } from "./_submission_client.ts";

const LOGIN = { user: "alice", password: "secret-password", from: "alice@example.org" };
const MESSAGES = 4;

await tlsMxTest("serve: mail for an MX with broken STARTTLS arrives once, in plaintext", {
  label: "serve outbound TLS fallback",
  where: "127.x.y.58",
}, async (t, ca) => {
  await using dns = await startMxDns({ "broken.test": loopback(58), "late.test": loopback(59) });
  const broken = await startCaptureServer({ host: loopback(58), port: 25, startTls: "break" });
  const late = await startCaptureServer({
    host: loopback(59),
    port: 25,
    startTls: "late",
    tlsFiles: { cert: ca.certPath, key: ca.keyPath },
    dropUnderTlsAt: "MAIL",
  });
  const server = await startServer({ config: outboundServeConfig(dns) });
  const events = (): LogEvent[] => allEvents(server.logs());
  try {
    await addUser(server.configPath, LOGIN.user, ["example.org"], LOGIN.password);
    const cases: [string, CaptureServer, RegExp][] = [
      ["broken.test", broken, /^starttls: /],
      ["late.test", late, /^session under TLS: /],
    ];
    for (const [domain, mx, reason] of cases) {
      await t.step(`${domain}: every message once, nothing left queued`, async () => {
        const sent = numbered(`${domain}-`, domain, MESSAGES);
        await submitAll(submissionPort(server), LOGIN, sent);
        const isDelivered = (to: string) =>
          events().some((e) => e.event === "delivered" && e.to === to);
        await until("every delivered line", () => sent.every((m) => isDelivered(m.to)), 30_000);
        // Delivered lines come after the settlement: nothing can go out again from here.
        assertEquals(await queueList(server.configPath, domain), []);
        const arrived = mx.messages.map((m) => subjectOf(m.body)).sort();
        assertEquals(arrived, sent.map((m) => m.subject).sort());
        assertEquals(mx.acks.length, MESSAGES);
        const fallback = events().filter((e) =>
          e.event === "outbound_tls_fallback" && String(e.host).startsWith(`mx.${domain}[`)
        );
        assert(fallback.length >= 1, server.logs());
        assert(fallback.every((e) => reason.test(String(e.reason))), JSON.stringify(fallback));
        // Deferred once at most, at the first attempt; its retry went in plaintext.
        for (const m of sent) {
          const deferred = events().filter((e) => e.event === "deferred" && e.to === m.to);
          assert(deferred.length <= 1, server.logs());
        }
      });
    }
  } finally {
    assertEquals(await server.stop(), 0);
    await removeTestFiles(server);
    await broken.close();
    await late.close();
  }
});
