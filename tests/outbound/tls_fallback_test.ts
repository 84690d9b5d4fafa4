/**
 * Opportunistic TLS that fails (RFC 3207 §4.1, RFC 7435): an MX host that offers STARTTLS and
 * then answers it 454, breaks the handshake, or hangs up at the first bytes under TLS, gets the
 * mail in plaintext on one new connection to the same address (as Postfix at
 * `smtp_tls_security_level = may`); under `outbound.tls: required` it gets nothing and the mail
 * is deferred. Real peers: dnsmasq and the byte-exact capture server on 127.x.y.27-29:25
 * (loopback(): this process's own addresses).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { deliverBatch, type DeliveryResult } from "../../src/outbound/deliver.ts";
import { type CaptureServer, startCaptureServer } from "../_helpers/capture_smtp.ts";
import { deliveryOptions, loopback, startMxDns, tlsMxTest } from "../_helpers/outbound_world.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";
import { numbered, type NumberedMessage, runNumbered } from "./_batch_fixtures.ts";

/** Runs a batch; every message must be reported exactly once. */
async function run(
  domain: string,
  batch: readonly NumberedMessage[],
  opts: Parameters<typeof deliverBatch>[2],
): Promise<Map<number, DeliveryResult>> {
  const { results } = await runNumbered(domain, batch, opts);
  assertEquals(results.size, batch.length);
  return results;
}

/** The verbs the capture server got since `from` (an index into its `commands`). */
const verbs = (mx: CaptureServer, from: number) =>
  mx.commands.slice(from).map((c) => c.split(" ")[0]?.toUpperCase());

await tlsMxTest("outbound: a failed opportunistic STARTTLS is retried in plaintext", {
  label: "outbound TLS fallback",
  where: "127.x.y.27",
}, async (t, ca) => {
  await using dns = await startMxDns({
    "refuse.test": loopback(27),
    "broken.test": loopback(28),
    "dropped.test": loopback(29),
  });
  const refusing = await startCaptureServer({ host: loopback(27), port: 25, startTls: "refuse" });
  const broken = await startCaptureServer({ host: loopback(28), port: 25, startTls: "break" });
  const dropped = await startCaptureServer({
    host: loopback(29),
    port: 25,
    startTls: "drop",
    tlsFiles: { cert: ca.certPath, key: ca.keyPath },
  });
  const events: RecordedEvent[] = [];
  const opts = { ...deliveryOptions(dns), log: recordingLogger(events) };
  const cases = [
    { domain: "refuse.test", mx: refusing, reason: /^starttls 454$/ },
    { domain: "broken.test", mx: broken, reason: /^starttls: TLS failed/ },
    { domain: "dropped.test", mx: dropped, reason: /^hello after TLS: / },
  ] as const;
  try {
    for (const { domain, mx, reason } of cases) {
      await t.step(`opportunistic, ${domain}: plaintext once more, sent once`, async () => {
        const [connections, commands] = [mx.connections, mx.commands.length];
        events.length = 0;
        const results = await run(domain, numbered(domain, 2), opts);
        for (const [n, r] of results) {
          assertEquals(r.recipients.map((x) => x.outcome), ["delivered"], `message ${n}`);
          assertEquals(r.host, `mx.${domain}[${mx.host}]`);
        }
        assertEquals(mx.connections - connections, 2);
        assertEquals(mx.messages.length, 2, "each message arrived once");
        // STARTTLS once, on the first connection; the second one never asks for it.
        const seen = verbs(mx, commands);
        assertEquals(seen.filter((v) => v === "STARTTLS").length, 1, seen.join(" "));
        const second = seen.lastIndexOf("EHLO");
        assert(second > seen.indexOf("STARTTLS"), seen.join(" "));
        assertEquals(seen.slice(second).filter((v) => v === "MAIL").length, 2, seen.join(" "));
        const fallback = events.filter((e) => e.event === "outbound_tls_fallback");
        assertEquals(fallback.length, 1, JSON.stringify(events));
        assertEquals(fallback[0]?.fields["host"], `mx.${domain}[${mx.host}]`);
        assert(reason.test(String(fallback[0]?.fields["reason"])), JSON.stringify(fallback));
        assert(!events.some((e) => e.event === "outbound_host_skipped"), JSON.stringify(events));
      });
      await t.step(`required, ${domain}: no plaintext connection, deferred`, async () => {
        const [connections, delivered] = [mx.connections, mx.messages.length];
        events.length = 0;
        // Whatever the message's TlsPlan says (a TLS session lost after its dot last time).
        const results = await run(domain, numbered(domain, 1), {
          ...opts,
          tls: "required",
          tlsPlan: () => "plaintext",
        });
        const r = results.get(0);
        assertEquals(r?.recipients.map((x) => x.outcome), ["deferred"], JSON.stringify(r));
        assertEquals(mx.connections - connections, 1);
        assertEquals(mx.messages.length, delivered);
        assert(!events.some((e) => e.event === "outbound_tls_fallback"), JSON.stringify(events));
      });
    }
  } finally {
    await refusing.close();
    await broken.close();
    await dropped.close();
  }
});
