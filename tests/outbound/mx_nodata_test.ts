/**
 * A domain whose MX hosts all exist but none has an address record (NODATA: NOERROR without A or
 * AAAA records, RFC 2308 §2.2): RFC 5321 §5.1 "If MX records are present, but none of them are
 * usable, … this situation MUST be reported as an error", and Postfix fails the message at once
 * ("Host found but no data record", dsn=5.4.4: its DNS_NOTFOUND covers NXDOMAIN and NODATA
 * alike). It was deferred as "no MX host has an address" until it expired five days later. What
 * may still change stays temporary: a lookup that fails (SERVFAIL, no answer), alone or beside
 * NODATA hosts, and a domain where this relay is a backup MX (tests/outbound/mx_loop_test.ts).
 * A real dnsmasq on 127.0.0.1 answers.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { resolveMx } from "../../src/outbound/mx.ts";
import { startDnsmasq } from "../_helpers/dnsmasq.ts";
import { toolTest } from "../_helpers/tools.ts";
import { failAtOnce } from "./_batch_fixtures.ts";
import { servfailServer } from "./_servfail_dns.ts";

await toolTest("an MX set whose every host has no address (NODATA) fails at once, 550 5.4.4", [
  "dnsmasq",
], async (t) => {
  const upstream = await servfailServer();
  try {
    await using dns = await startDnsmasq({
      mx: [
        { name: "nodata.test", host: "mx1.nodata.test", preference: 10 },
        { name: "nodata.test", host: "mx2.nodata.test", preference: 20 },
        // One host does not exist at all, the other exists without an address.
        { name: "mixed.test", host: "gone.mixed.test", preference: 10 },
        { name: "mixed.test", host: "mx1.nodata.test", preference: 20 },
        // One exists without an address, the other's lookup fails.
        { name: "broken.test", host: "mx1.nodata.test", preference: 10 },
        { name: "broken.test", host: "mx.fails.test", preference: 20 },
        // This relay is the backup MX of a domain whose primary has no address.
        { name: "backup.test", host: "mx1.nodata.test", preference: 10 },
        { name: "backup.test", host: "relay.example.net", preference: 20 },
      ],
      hosts: [{ name: "relay.example.net", addresses: ["127.0.0.25"] }],
      // Both exist (each has a TXT record) without an address: NOERROR, no records.
      txt: [
        { name: "mx1.nodata.test", strings: ["exists"] },
        { name: "mx2.nodata.test", strings: ["exists"] },
      ],
      forward: [{ domain: "fails.test", server: `127.0.0.1#${upstream.address().port}` }],
    });
    const nameServer = { ipAddr: dns.ipAddr, port: dns.port };

    await t.step("every MX host exists without an address: permanent, 5.4.4", async () => {
      for (const domain of ["nodata.test", "mixed.test"]) {
        assertEquals(await resolveMx(domain, { nameServer, allowPrivate: true }), {
          kind: "permanent",
          reason: "no_host_address",
          status: "5.4.4",
        }, domain);
      }
    });

    await t.step("beside a host whose lookup fails (SERVFAIL): still temporary", async () => {
      const r = await resolveMx("broken.test", { nameServer, allowPrivate: true });
      assert(r.kind === "temporary", JSON.stringify(r));
      assertEquals([r.reason, r.status], ["dns_error", "4.4.3"]);
    });

    await t.step("this relay as the backup MX keeps the mail for its primary", async () => {
      const self = { names: ["relay.example.net"], addresses: [] };
      const r = await resolveMx("backup.test", { nameServer, allowPrivate: true, self });
      assert(r.kind === "temporary", JSON.stringify(r));
      assertEquals([r.reason, r.status], ["no_addresses", "4.4.3"]);
    });

    await t.step("the batch fails the recipient with 550 5.4.4 and reports it", async () => {
      const r = await failAtOnce(dns, "bob@nodata.test");
      assert(/^550 5\.4\.4 Host found but no address record/.test(r.reply), r.reply);
      assert(r.reply.includes("nodata.test"), r.reply);
      assertEquals([r.statuses, r.reports], [["failed"], 1]);
      assert(r.report.includes("Final-Recipient: rfc822; bob@nodata.test\r\n"), r.report);
      assert(r.report.includes("Action: failed\r\nStatus: 5.4.4\r\n"), r.report);
    });
  } finally {
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  }
});
