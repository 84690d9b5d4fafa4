/**
 * MX hosts (and implicit MX addresses) at loopback, private, link-local or other non-public
 * addresses are refused unless `outbound.allow_private_mx` is set: a domain's owner chooses its
 * MX records, and one pointing them at 127.0.0.1 or 10.0.0.5 would otherwise make the relay
 * connect inside its own host or network (SSRF). dnsmasq answers the lookups; the "internal"
 * MTA is a capture server on 127.x.y.81:25 (loopback(): this process's own addresses).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { deliverToDomain } from "../../src/outbound/deliver.ts";
import { resolveMx } from "../../src/outbound/mx.ts";
import { isPublicAddress } from "../../src/outbound/mx_public.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import {
  deliveryOptions,
  loopback,
  outboundMessage,
  startMxDns,
} from "../_helpers/outbound_world.ts";
import { startDnsmasq } from "../_helpers/dnsmasq.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";

await toolTest("resolveMx refuses non-public MX addresses by default", ["dnsmasq"], async (t) => {
  await using dns = await startDnsmasq({
    mx: [
      { name: "loop.test", host: "mx.loop.test", preference: 10 },
      { name: "inside.test", host: "a.inside.test", preference: 10 },
      { name: "inside.test", host: "b.inside.test", preference: 20 },
      { name: "mixed.test", host: "private.mixed.test", preference: 10 },
      { name: "mixed.test", host: "public.mixed.test", preference: 20 },
    ],
    hosts: [
      { name: "mx.loop.test", addresses: ["127.0.0.1", "::1"] },
      { name: "a.inside.test", addresses: ["10.1.2.3", "fd00::25"] },
      { name: "b.inside.test", addresses: ["169.254.169.254", "fe80::1"] },
      { name: "private.mixed.test", addresses: ["192.168.1.25"] },
      // One public address beside a private one: only the public one is tried.
      { name: "public.mixed.test", addresses: ["198.51.99.25", "fe80::25"] },
      { name: "implicit.test", addresses: ["127.0.0.53"] },
      { name: "mapped.test", addresses: ["::ffff:127.0.0.1"] },
    ],
  });
  const nameServer = { ipAddr: dns.ipAddr, port: dns.port };
  const refused = { kind: "permanent", reason: "private_address", status: "5.4.4" };

  await t.step("an MX at loopback: refused for good (5.4.4)", async () => {
    assertEquals(await resolveMx("loop.test", { nameServer }), refused);
  });

  await t.step("every MX host private or link-local: refused", async () => {
    assertEquals(await resolveMx("inside.test", { nameServer }), refused);
  });

  await t.step("private addresses are dropped, public ones kept", async () => {
    assertEquals(await resolveMx("mixed.test", { nameServer }), {
      kind: "hosts",
      isImplicit: false,
      hosts: [{ name: "public.mixed.test", preference: 20, addresses: ["198.51.99.25"] }],
    });
  });

  await t.step("an implicit MX (no MX, the A record) at loopback: refused", async () => {
    assertEquals(await resolveMx("implicit.test", { nameServer }), refused);
    assertEquals(await resolveMx("mapped.test", { nameServer }), refused);
  });

  await t.step("allowPrivate: every address is kept (tests, special set-ups)", async () => {
    const r = await resolveMx("inside.test", { nameServer, allowPrivate: true });
    assert(r.kind === "hosts", JSON.stringify(r));
    assertEquals(r.hosts.map((h) => h.addresses), [
      ["10.1.2.3", "fd00::25"],
      ["169.254.169.254", "fe80::1"],
    ]);
  });
});

await toolTest(
  "deliverToDomain never connects to an MX at loopback unless allowed",
  ["dnsmasq"],
  async (t) => {
    if (!canBindPort25("mx_private", "127.x.y.81")) return;
    await using dns = await startMxDns({ "internal.test": loopback(81) });
    const internal = await startCaptureServer({ host: loopback(81), port: 25 });
    try {
      const body = new TextEncoder().encode("Subject: x\r\n\r\nhello\r\n");
      const msg = outboundMessage(["postmaster@internal.test"], body);
      const { allowPrivateMx: _, ...refusing } = deliveryOptions(dns);

      await t.step("by default: failed with 554 5.4.4, no connection made", async () => {
        const r = await deliverToDomain("internal.test", msg, refusing);
        assertEquals(r.host, undefined);
        assertEquals(r.recipients.map((x) => [x.outcome, x.reply.code, x.reply.enhanced]), [
          ["failed", 554, "5.4.4"],
        ]);
        assertEquals(internal.connections, 0);
      });

      await t.step("allowPrivateMx: delivered", async () => {
        const r = await deliverToDomain("internal.test", msg, {
          ...refusing,
          allowPrivateMx: true,
        });
        assertEquals(r.recipients.map((x) => x.outcome), ["delivered"]);
        assertEquals(internal.messages.length, 1);
      });
    } finally {
      await internal.close();
    }
  },
);

Deno.test("isPublicAddress: the special-purpose ranges are not public, their neighbours are", () => {
  const notPublic = [
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.255",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.0.1",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",
    "64:ff9b:1::1",
    "100::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fec0::1",
    "ff02::1",
    "2001::1",
    "2001:db8::25",
    "2002:7f00:1::1",
    "2002:c0a8:101::1",
    "3fff::1",
    "not an address",
    "",
  ];
  const isPublic = [
    "1.1.1.1",
    "9.255.255.255",
    "11.0.0.1",
    "100.63.255.255",
    "100.128.0.1",
    "126.255.255.255",
    "128.0.0.1",
    "169.253.0.1",
    "172.15.255.255",
    "172.32.0.1",
    "192.0.1.1",
    "192.167.1.1",
    "192.169.0.1",
    "198.17.255.255",
    "198.20.0.1",
    "203.0.114.1",
    "223.255.255.255",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2001:200::1",
    "2001:4860:4860::8888",
    "2002:808:808::1",
    "2a00:1450:4001::1b",
    "3fff:1000::1",
  ];
  for (const a of notPublic) assertEquals([a, isPublicAddress(a)], [a, false]);
  for (const a of isPublic) assertEquals([a, isPublicAddress(a)], [a, true]);
});
