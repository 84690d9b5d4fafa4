/**
 * A domain whose every MX host name does not exist (NXDOMAIN, the DNS's final "no such name"):
 * no answer will ever come, so the mail fails at once with `550 5.4.4` and a failure report,
 * as Postfix does ("Host or domain name not found", dsn=5.4.4) and RFC 5321 §5.1 asks (an
 * unresolvable destination is reported as an error). It was deferred as "no MX host has an
 * address" until it expired five days later. What may still change stays temporary: an MX host
 * whose lookup fails (SERVFAIL), also beside NXDOMAIN hosts. MX hosts that exist without an
 * address (NODATA), alone or beside NXDOMAIN hosts: tests/outbound/mx_nodata_test.ts. A domain
 * without MX records whose own name does not exist already failed (`550 5.1.2`,
 * tests/outbound/mx_test.ts). A real dnsmasq on 127.0.0.1 answers.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { resolveMx } from "../../src/outbound/mx.ts";
import { startDnsmasq } from "../_helpers/dnsmasq.ts";
import { toolTest } from "../_helpers/tools.ts";
import { failAtOnce } from "./_batch_fixtures.ts";
import { servfailServer } from "./_servfail_dns.ts";

await toolTest("an MX set whose every host is NXDOMAIN fails at once, 550 5.4.4", [
  "dnsmasq",
], async (t) => {
  const upstream = await servfailServer();
  try {
    await using dns = await startDnsmasq({
      mx: [
        { name: "allgone.test", host: "mx1.allgone.test", preference: 10 },
        { name: "allgone.test", host: "mx2.allgone.test", preference: 20 },
        { name: "broken.test", host: "gone.allgone.test", preference: 10 },
        { name: "broken.test", host: "mx.fails.test", preference: 20 },
      ],
      forward: [{ domain: "fails.test", server: `127.0.0.1#${upstream.address().port}` }],
    });
    const nameServer = { ipAddr: dns.ipAddr, port: dns.port };

    await t.step("every MX host NXDOMAIN: permanent, 5.4.4", async () => {
      assertEquals(await resolveMx("allgone.test", { nameServer, allowPrivate: true }), {
        kind: "permanent",
        reason: "no_such_host",
        status: "5.4.4",
      });
    });

    await t.step("an MX host whose lookup fails (SERVFAIL): still temporary", async () => {
      const r = await resolveMx("broken.test", { nameServer, allowPrivate: true });
      assert(r.kind === "temporary", JSON.stringify(r));
      assertEquals([r.reason, r.status], ["dns_error", "4.4.3"]);
    });

    await t.step("the batch fails the recipient with 550 5.4.4 and reports it", async () => {
      const r = await failAtOnce(dns, "bob@allgone.test");
      assert(/^550 5\.4\.4 /.test(r.reply), r.reply);
      assert(r.reply.includes("allgone.test"), r.reply);
      // Failed for good (never tried again); the report waits for alice (example.org is ours).
      assertEquals([r.statuses, r.reports], [["failed"], 1]);
      assert(r.report.includes("Final-Recipient: rfc822; bob@allgone.test\r\n"), r.report);
      assert(r.report.includes("Action: failed\r\nStatus: 5.4.4\r\n"), r.report);
      assert(r.report.includes("Diagnostic-Code: smtp; 550 5.4.4 "), r.report);
    });
  } finally {
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  }
});
