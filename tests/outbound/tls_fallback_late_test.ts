/**
 * Opportunistic TLS that breaks later in the session (RFC 7435 §3): an MX host whose TLS
 * session is lost after the EHLO under TLS (a hang-up at MAIL, at DATA, or once a message's
 * final dot arrived) gets the rest of the mail in plaintext on one new connection to the same
 * address, as Postfix at `smtp_tls_security_level = may` retries a TLS session failure. A
 * message whose final dot went out is not sent again in that attempt (the peer may have taken
 * it: it is deferred); under `outbound.tls: required` nothing goes out in plaintext. Real
 * peers: dnsmasq and the byte-exact capture server on 127.x.y.37-39:25 (loopback()).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { deliverBatch, type DeliveryResult } from "../../src/outbound/deliver.ts";
import type { OutboundMessage } from "../../src/smtp/sender.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import {
  deliveryOptions,
  loopback,
  outboundMessage,
  startMxDns,
  tlsMxTest,
} from "../_helpers/outbound_world.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

interface TestMessage extends OutboundMessage {
  readonly n: number;
}

function messages(domain: string, count: number): TestMessage[] {
  return Array.from({ length: count }, (_, n): TestMessage => {
    const body = enc(`From: a@example.org\r\nSubject: m${n}\r\n\r\nbody ${n}\r\n`);
    return { n, ...outboundMessage([`u${n}@${domain}`], body, "a@example.org", n) };
  });
}

/** Runs a batch; every message must be reported exactly once. */
async function run(
  domain: string,
  batch: readonly TestMessage[],
  opts: Parameters<typeof deliverBatch>[2],
): Promise<Map<number, DeliveryResult>> {
  const results = new Map<number, DeliveryResult>();
  const summary = await deliverBatch(domain, batch, opts, (m, r) => {
    assert(!results.has(m.n), `message ${m.n} reported twice`);
    results.set(m.n, r);
  });
  assertEquals(results.size, batch.length);
  assertEquals(summary.messages, batch.length);
  return results;
}

const subjects = (bodies: readonly { body: Uint8Array }[]) =>
  bodies.map((m) => /Subject: (\S+)/.exec(dec(m.body))?.[1]);

await tlsMxTest("outbound: a TLS session lost after EHLO goes on in plaintext", {
  label: "outbound late TLS fallback",
  where: "127.x.y.37",
}, async (t, ca) => {
  const tlsFiles = { cert: ca.certPath, key: ca.keyPath };
  await using dns = await startMxDns({
    "mail.test": loopback(37),
    "data.test": loopback(38),
    "dot.test": loopback(39),
  });
  const servers = [
    { domain: "mail.test", at: "MAIL", n: 37 },
    { domain: "data.test", at: "DATA", n: 38 },
    { domain: "dot.test", at: ".", n: 39 },
  ] as const;
  const mxs = await Promise.all(servers.map(({ at, n }) =>
    startCaptureServer({
      host: loopback(n),
      port: 25,
      startTls: "late",
      tlsFiles,
      dropUnderTlsAt: at,
    })
  ));
  const events: RecordedEvent[] = [];
  const opts = { ...deliveryOptions(dns), log: recordingLogger(events) };
  try {
    for (const [i, { domain, at }] of servers.entries()) {
      const mx = mxs[i];
      assert(mx !== undefined);
      await t.step(`lost at ${at} under TLS: the rest in plaintext, nothing twice`, async () => {
        events.length = 0;
        const results = await run(domain, messages(domain, 3), opts);
        assertEquals(mx.connections, 2, "one TLS session, one plaintext session");
        // At the final dot the first message arrived and got no reply: it is deferred, never
        // sent again in plaintext; every other message arrives once, in plaintext.
        const isDot = at === ".";
        for (const [n, r] of results) {
          const expected = isDot && n === 0 ? "deferred" : "delivered";
          assertEquals(r.recipients.map((x) => x.outcome), [expected], `message ${n}`);
        }
        assertEquals(subjects(mx.messages), ["m0", "m1", "m2"]);
        const fallback = events.filter((e) => e.event === "outbound_tls_fallback");
        assertEquals(fallback.length, 1, JSON.stringify(events));
        assertEquals(fallback[0]?.fields["host"], `mx.${domain}[${mx.host}]`);
        assert(
          /^session under TLS: /.test(String(fallback[0]?.fields["reason"])),
          JSON.stringify(fallback),
        );
      });
      await t.step(`required, lost at ${at}: no plaintext connection`, async () => {
        const [connections, arrived] = [mx.connections, mx.messages.length];
        events.length = 0;
        const results = await run(domain, messages(domain, 2), { ...opts, tls: "required" });
        for (const [n, r] of results) {
          assertEquals(r.recipients.map((x) => x.outcome), ["deferred"], `message ${n}`);
        }
        assertEquals(mx.connections - connections, 1);
        assertEquals(mx.messages.length - arrived, at === "." ? 1 : 0);
        assert(!events.some((e) => e.event === "outbound_tls_fallback"), JSON.stringify(events));
      });
    }
  } finally {
    for (const mx of mxs) await mx.close();
  }
});
