/**
 * The outbound tests' world: a real DNS server (dnsmasq) naming one MX per destination domain
 * on a loopback address, the delivery options that resolve through it, the messages handed to
 * src/outbound/deliver.ts, and the `serve` config that delivers through it.
 */
import { DkimKeyStore, txtStrings } from "../../src/dkim/keys.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import type { OutboundMessage } from "../../src/smtp/sender.ts";
import { type DnsRecords, type DnsServer, startDnsmasq } from "./dnsmasq.ts";
import { type TestCa, withTestCa } from "./certs.ts";
import { canBindPort25, toolTest } from "./tools.ts";

/**
 * A loopback address of this test process's own, `127.<from the pid>.<n>`: the outbound tests
 * bind port 25 (the port MX delivery dials), so two test processes on fixed addresses (a suite
 * beside a targeted run of tests/outbound) took each other's port or got each other's mail.
 * Every 127.0.0.0/8 address is loopback; the second octet is never 0, so 127.0.0.x stays free.
 * Test files run in one process under `deno test --parallel` (one pid), so each file has its
 * own `n`s: deliver_test 21-23, deliver_tls_test 25-26, tls_fallback_test 27-29,
 * tls_fallback_late_test 37-39, deliver_batch_test 31-36, worker_test 41-44, postfix_relay_test 47, e2e/outbound_test 51-53, e2e/outbound_tls_fallback_test 58-59,
 * outbound_crash_test 54-55, outbound_postgres_test 56-57, batch_unreadable_test 61,
 * batch_key_error_test 63, mx_self_test 71-72 (one per test: a listener still closing never
 * holds the next), mx_private_test 81, batch_lease_test 82, tls_fallback_retry_test 91-94,
 * batch_recipient_chunks_test 95, batch_settle_failed_hold_test 96, mx_address_limit_test 100-111,
 * e2e/domain_added_reroute_test 121-122 (nothing listens: their MX refuses), batch_owned_test 123.
 */
export function loopback(n: number): string {
  return `127.${1 + ((Deno.pid >> 8) % 254)}.${Deno.pid & 255}.${n}`;
}

/**
 * Records for domains that each have one MX, `mx.<domain>` (preference 10), at the address
 * given: `{ "dest.test": loopback(51) }`.
 */
export function oneMxEach(domains: Readonly<Record<string, string>>): DnsRecords {
  const entries = Object.entries(domains);
  return {
    mx: entries.map(([name]) => ({ name, host: `mx.${name}`, preference: 10 })),
    hosts: entries.map(([name, address]) => ({ name: `mx.${name}`, addresses: [address] })),
  };
}

/**
 * dnsmasq answering `oneMxEach(domains)` and the `more` records beside them (DKIM keys, a
 * domain with several MX hosts, a null MX).
 */
export function startMxDns(
  domains: Readonly<Record<string, string>>,
  more: DnsRecords = {},
): Promise<DnsServer> {
  const simple = oneMxEach(domains);
  return startDnsmasq({
    mx: [...simple.mx ?? [], ...more.mx ?? []],
    hosts: [...simple.hosts ?? [], ...more.hosts ?? []],
    txt: more.txt ?? [],
  });
}

/**
 * The options of `deliverToDomain` / `deliverBatch` that resolve through `dns`; the MX hosts
 * here are on loopback, so `allowPrivateMx` is set (`outbound.allow_private_mx`).
 */
export function deliveryOptions(dns: DnsServer) {
  return {
    helo: "relay.example.net",
    log: NULL_LOGGER,
    nameServer: { ipAddr: dns.ipAddr, port: dns.port },
    connectTimeoutMs: 5_000,
    allowPrivateMx: true,
  };
}

/** A message for the outbound code: recipient ids count from `firstId`, the body is one chunk. */
export function outboundMessage(
  to: readonly string[],
  body: Uint8Array,
  from = "alice@example.org",
  firstId = 0,
): OutboundMessage {
  return {
    mailFrom: from,
    params: {},
    size: body.length,
    recipients: to.map((address, i) => ({ id: firstId + i, address })),
    readBody: () => [body],
  };
}

/**
 * The `serve` config of a node that takes submissions (127.0.0.1, a port picked at run time)
 * and delivers to the world through `dns` (MX hosts on loopback allowed), retrying after a second; `extra` adds sections
 * (its `outbound` keys join these).
 */
export function outboundServeConfig(
  dns: DnsServer,
  extra: { readonly outbound?: Record<string, unknown>; readonly [k: string]: unknown } = {},
): Record<string, unknown> {
  return {
    submission: { listen: ["127.0.0.1:0"] },
    ...extra,
    outbound: {
      resolver: dns.address,
      retry: ["1s"],
      // The MX hosts here are on loopback, which a deployment refuses.
      "allow_private_mx": true,
      ...extra.outbound,
    },
  };
}

/** The submission port a test `serve` announced (throws when it announced none). */
export function submissionPort(
  server: { readonly listening: readonly { proto: string; port: number }[] },
): number {
  const l = server.listening.find((e) => e.proto === "submission");
  if (l === undefined) throw new Error("no submission listener was announced");
  return l.port;
}

/**
 * A DKIM key store in `dir` holding a new ed25519 key for example.org under `selector`, and
 * the TXT record that publishes it (for `startMxDns`'s `more`).
 */
export async function exampleOrgKey(
  dir: string,
  selector: string,
): Promise<{ keys: DkimKeyStore; txt: NonNullable<DnsRecords["txt"]> }> {
  const keys = new DkimKeyStore(dir);
  const key = await keys.generate("example.org", selector, "ed25519");
  return { keys, txt: [{ name: key.dnsName, strings: txtStrings(key.dnsText) }] };
}

/**
 * A test (dnsmasq and openssl required) of MX hosts under TLS on port 25 of this process's own
 * addresses: skipped, saying why, where port 25 of `probe.where` cannot be bound
 * (canBindPort25); `fn` gets a test CA, removed after it.
 */
export function tlsMxTest(
  name: string,
  probe: { readonly label: string; readonly where: string },
  fn: (t: Deno.TestContext, ca: TestCa) => Promise<void>,
): Promise<void> {
  return toolTest(name, ["dnsmasq", "openssl"], async (t) => {
    if (!canBindPort25(probe.label, probe.where)) return;
    await withTestCa((ca) => fn(t, ca));
  });
}
