/**
 * Review wt20-outdns: MX host names outside host-name syntax (RFC 1123 §2.1, RFC 5321 §2.3.5:
 * letters, digits and hyphens). An address literal in brackets (`MX 10 [192.0.2.1].`) is not an
 * address where a host name belongs, nor a name: Postfix's lookup refuses it as an invalid name
 * (DNS_INVAL, 5.4.4), as it refuses a label with a space. Deno.resolveDns refuses such names
 * before any query (and also an underscore, which it never resolves), with an error that is not
 * "not found": each was taken for a failing DNS server and the mail deferred until it expired.
 * Such a host is now skipped as one that cannot exist; when every host is one of those (or
 * NXDOMAIN), the mail fails at once with 5.4.4. A bare address (`MX 10 192.0.2.1.`) is still
 * taken as that address (tests/outbound/mx_numeric_test.ts). A real dnsmasq on 127.0.0.1
 * answers.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { resolveMx } from "../../src/outbound/mx.ts";
import { startDnsmasq } from "../_helpers/dnsmasq.ts";
import { toolTest } from "../_helpers/tools.ts";
import { servfailServer } from "./_servfail_dns.ts";

await toolTest("resolveMx: an MX host name outside host-name syntax is not a DNS failure", [
  "dnsmasq",
], async (t) => {
  const upstream = await servfailServer();
  try {
    await using dns = await startDnsmasq({
      mx: [
        { name: "bracket.test", host: "[192.0.2.1]", preference: 10 },
        { name: "underscore.test", host: "mx_1.underscore.test", preference: 10 },
        { name: "space.test", host: "mx 1.space.test", preference: 10 },
        // One invalid host, one real one: the real one is used.
        { name: "mixed.test", host: "[192.0.2.1]", preference: 5 },
        { name: "mixed.test", host: "mx.mixed.test", preference: 10 },
        // One invalid host, one whose lookup fails: the mail waits.
        { name: "failing.test", host: "[192.0.2.1]", preference: 5 },
        { name: "failing.test", host: "mx.fails.test", preference: 10 },
        // An MX host that is an alias (RFC 2181 §10.3 says it must not be; MTAs follow it).
        { name: "alias.test", host: "mx.alias.test", preference: 10 },
      ],
      hosts: [
        { name: "mx.mixed.test", addresses: ["127.0.0.5"] },
        { name: "real.alias.test", addresses: ["127.0.0.6"] },
      ],
      cname: [{ name: "mx.alias.test", target: "real.alias.test" }],
      forward: [{ domain: "fails.test", server: `127.0.0.1#${upstream.address().port}` }],
    });
    const nameServer = { ipAddr: dns.ipAddr, port: dns.port };

    await t.step("every MX host an invalid name: permanent, 5.4.4", async () => {
      for (const domain of ["bracket.test", "underscore.test", "space.test"]) {
        assertEquals(await resolveMx(domain, { nameServer, allowPrivate: true }), {
          kind: "permanent",
          reason: "no_such_host",
          status: "5.4.4",
        }, domain);
      }
    });

    await t.step("an invalid name beside a real host: the real host", async () => {
      const r = await resolveMx("mixed.test", { nameServer, allowPrivate: true });
      assert(r.kind === "hosts", JSON.stringify(r));
      assertEquals(r.hosts.map((h) => [h.name, h.addresses]), [["mx.mixed.test", ["127.0.0.5"]]]);
    });

    await t.step("an MX host that is a CNAME: its target's addresses", async () => {
      const r = await resolveMx("alias.test", { nameServer, allowPrivate: true });
      assert(r.kind === "hosts", JSON.stringify(r));
      assertEquals(r.hosts.map((h) => [h.name, h.addresses]), [["mx.alias.test", ["127.0.0.6"]]]);
    });

    await t.step("an invalid name beside a failing lookup: temporary", async () => {
      const r = await resolveMx("failing.test", { nameServer, allowPrivate: true });
      assert(r.kind === "temporary", JSON.stringify(r));
      assertEquals([r.reason, r.status], ["dns_error", "4.4.3"]);
    });
  } finally {
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  }
});
