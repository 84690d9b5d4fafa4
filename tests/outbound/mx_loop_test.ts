/**
 * RFC 5321 §5.1 loop avoidance in resolveMx (src/outbound/mx.ts, mx_self.ts): our own host,
 * known by name or by a listen address, is discarded from a domain's MX list with every host of
 * its preference or a higher number; when nothing more preferred is listed the mail loops back
 * to us (permanent 5.4.6, Postfix's "mail for X loops back to myself"); when more preferred
 * hosts are listed but have no address now, it is temporary (Postfix: "unable to find primary
 * relay").
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { resolveMx } from "../../src/outbound/mx.ts";
import { canonicalIp, isSelf, ownHost } from "../../src/outbound/mx_self.ts";
import { deliverToDomain } from "../../src/outbound/deliver.ts";
import { startDnsmasq } from "../_helpers/dnsmasq.ts";
import { deliveryOptions, outboundMessage } from "../_helpers/outbound_world.ts";
import { toolTest } from "../_helpers/tools.ts";

const US = { names: ["relay.example.net"], addresses: ["192.0.2.25", "2001:db8::25"] };

await toolTest(
  "resolveMx discards our own MX host and the less preferred ones",
  ["dnsmasq"],
  async (t) => {
    await using dns = await startDnsmasq({
      mx: [
        // We are the backup (by name) of a domain whose primary is elsewhere.
        { name: "backup.test", host: "primary.backup.test", preference: 10 },
        { name: "backup.test", host: "relay.example.net", preference: 20 },
        { name: "backup.test", host: "third.backup.test", preference: 30 },
        // We are the best MX (by address, under another name).
        { name: "best.test", host: "alias.best.test", preference: 10 },
        { name: "best.test", host: "other.best.test", preference: 20 },
        // Equal preference to ours: discarded too.
        { name: "equal.test", host: "relay.example.net", preference: 10 },
        { name: "equal.test", host: "peer.equal.test", preference: 10 },
        // The more preferred host has no address now.
        { name: "dangling.test", host: "gone.dangling.test", preference: 10 },
        { name: "dangling.test", host: "RELAY.example.net.", preference: 20 },
      ],
      hosts: [
        { name: "primary.backup.test", addresses: ["127.0.0.2"] },
        { name: "relay.example.net", addresses: ["127.0.0.3"] },
        { name: "third.backup.test", addresses: ["127.0.0.4"] },
        { name: "alias.best.test", addresses: ["2001:db8:0::25"] },
        { name: "other.best.test", addresses: ["127.0.0.5"] },
        { name: "peer.equal.test", addresses: ["127.0.0.6"] },
        { name: "self.test", addresses: ["192.0.2.25"] },
      ],
    });
    const nameServer = { ipAddr: dns.ipAddr, port: dns.port };

    await t.step("ours by name as backup: only the more preferred host is left", async () => {
      const r = await resolveMx("backup.test", { nameServer, allowPrivate: true, self: US });
      assert(r.kind === "hosts", JSON.stringify(r));
      assertEquals(r.hosts.map((h) => h.name), ["primary.backup.test"]);
      // Without knowing ourselves every host is tried (what the fix changed).
      const blind = await resolveMx("backup.test", { nameServer, allowPrivate: true });
      assert(blind.kind === "hosts");
      assertEquals(blind.hosts.length, 3);
    });

    await t.step("ours by address as the best MX: the mail loops back (5.4.6)", async () => {
      assertEquals(await resolveMx("best.test", { nameServer, allowPrivate: true, self: US }), {
        kind: "permanent",
        reason: "mx_loop",
        status: "5.4.6",
      });
    });

    await t.step("a host of our preference is discarded with us", async () => {
      const r = await resolveMx("equal.test", { nameServer, allowPrivate: true, self: US });
      assertEquals(r.kind === "permanent" && r.reason, "mx_loop");
    });

    await t.step("more preferred hosts without an address: temporary, not a loop", async () => {
      const r = await resolveMx("dangling.test", { nameServer, allowPrivate: true, self: US });
      assert(r.kind === "temporary", JSON.stringify(r));
      assertEquals([r.reason, r.status], ["no_addresses", "4.4.3"]);
    });

    await t.step("an implicit MX at one of our addresses loops back", async () => {
      const r = await resolveMx("self.test", { nameServer, allowPrivate: true, self: US });
      assertEquals(r.kind === "permanent" && r.reason, "mx_loop");
      const blind = await resolveMx("self.test", { nameServer, allowPrivate: true });
      assertEquals(blind.kind, "hosts");
    });

    await t.step("deliverToDomain fails a looping domain's mail at once: 554 5.4.6", async () => {
      const r = await deliverToDomain(
        "equal.test",
        outboundMessage(["x@equal.test"], new TextEncoder().encode("Subject: s\r\n\r\nb\r\n")),
        deliveryOptions(dns), // helo relay.example.net: ours
      );
      assertEquals(r.recipients.map((x) => [x.outcome, x.reply.code, x.reply.enhanced]), [
        ["failed", 554, "5.4.6"],
      ]);
    });
  },
);

Deno.test("ownHost: names, listen names and specific listen addresses; wildcards name nothing", () => {
  const own = ownHost(["Relay.Example.net."], [
    { host: "0.0.0.0" },
    { host: "::" },
    { host: "[::]" },
    { host: "192.0.2.25" },
    { host: "[2001:DB8::25]" },
    { host: "mx.example.net" },
  ]);
  assertEquals(own, {
    names: ["relay.example.net", "mx.example.net"],
    addresses: ["192.0.2.25", "2001:0db8:0000:0000:0000:0000:0000:0025"],
  });
  assert(isSelf(own, "MX.example.net.", []));
  assert(isSelf(own, "other.test", ["127.0.0.1", "2001:db8:0:0::25"]));
  assert(isSelf(own, "other.test", ["::ffff:192.0.2.25"]));
  assert(!isSelf(own, "other.test", ["192.0.2.26", "::"]));
  assert(!isSelf(undefined, "relay.example.net", []));
});

Deno.test("canonicalIp: one spelling per address", () => {
  assertEquals(canonicalIp("::1"), "0000:0000:0000:0000:0000:0000:0000:0001");
  assertEquals(canonicalIp("0:0:0:0:0:0:0:1"), canonicalIp("::1"));
  assertEquals(canonicalIp("fe80::1%eth0"), canonicalIp("FE80:0::1"));
  assertEquals(canonicalIp("::ffff:10.1.2.3"), "10.1.2.3");
  assertEquals(canonicalIp("64:ff9b::10.1.2.3"), "0064:ff9b:0000:0000:0000:0000:0a01:0203");
  assertEquals(canonicalIp("192.0.2.1"), "192.0.2.1");
});
