/**
 * An MX record whose host is an IP address ("MX 10 192.0.2.1."): RFC 5321 §5.1 wants a name
 * there, but such domains exist and Postfix delivers to them (its DNS client passes a "numeric
 * domain name" with a warning, and its SMTP client takes a numeric name as the address). We
 * asked DNS for the A records of "192.0.2.1.", got NXDOMAIN, and deferred the mail as "no MX host
 * has an address" until it expired. Now the address is used as it is, under the same rules as
 * any MX address: not public is refused unless `outbound.allow_private_mx`, and one of our own
 * listen addresses is a mail loop. dnsmasq on 127.0.0.1 answers the records.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { resolveMx } from "../../src/outbound/mx.ts";
import { startDnsmasq } from "../_helpers/dnsmasq.ts";
import { toolTest } from "../_helpers/tools.ts";

await toolTest("resolveMx takes an MX host that is an IP address as that address", [
  "dnsmasq",
], async (t) => {
  await using dns = await startDnsmasq({
    mx: [
      { name: "numeric.test", host: "127.0.0.9", preference: 10 },
      { name: "mixed.test", host: "127.0.0.10", preference: 10 },
      { name: "mixed.test", host: "mx.mixed.test", preference: 20 },
    ],
    hosts: [{ name: "mx.mixed.test", addresses: ["127.0.0.11"] }],
  });
  const nameServer = { ipAddr: dns.ipAddr, port: dns.port };
  await t.step("its address, as any MX host's", async () => {
    assertEquals(await resolveMx("numeric.test", { nameServer, allowPrivate: true }), {
      kind: "hosts",
      hosts: [{ name: "127.0.0.9", preference: 10, addresses: ["127.0.0.9"] }],
      isImplicit: false,
    });
    assertEquals(await resolveMx("mixed.test", { nameServer, allowPrivate: true }), {
      kind: "hosts",
      hosts: [
        { name: "127.0.0.10", preference: 10, addresses: ["127.0.0.10"] },
        { name: "mx.mixed.test", preference: 20, addresses: ["127.0.0.11"] },
      ],
      isImplicit: false,
    });
  });
  await t.step("not public: refused without allow_private_mx", async () => {
    assertEquals(await resolveMx("numeric.test", { nameServer }), {
      kind: "permanent",
      reason: "private_address",
      status: "5.4.4",
    });
  });
  await t.step("one of our listen addresses: a mail loop", async () => {
    assertEquals(
      await resolveMx("numeric.test", {
        nameServer,
        allowPrivate: true,
        self: { names: ["relay.example.net"], addresses: ["127.0.0.9"] },
      }),
      { kind: "permanent", reason: "mx_loop", status: "5.4.6" },
    );
  });
});
