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
import { bounceFailed } from "../../src/queue/bounce.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { startDnsmasq } from "../_helpers/dnsmasq.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { toolTest } from "../_helpers/tools.ts";
import { queueMx, runDueBatch } from "./_batch_fixtures.ts";
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
      await withTempDataDir(async (dir) => {
        const store = new SqliteQueueStore(openDatabase(dir));
        try {
          const from = "alice@example.org";
          const id = await queueMx(store, "bob@allgone.test", {
            from,
            body: `From: ${from}\r\nSubject: hi\r\n\r\nhello\r\n`,
          });
          const { counts, events } = await runDueBatch(store, dns, {
            onFailed: async (message, failed) => {
              await bounceFailed(message, failed, {
                store,
                hostname: "relay.example.net",
                isLocalDomain: (d) => d === "example.org",
                log: NULL_LOGGER,
              });
            },
          });
          assertEquals([counts.failed, counts.deferred, counts.sessions], [1, 0, 0]);
          const said = events.find((e) => e.event === "failed");
          const reply = String(said?.fields.reply);
          assert(/^550 5\.4\.4 /.test(reply), reply);
          assert(reply.includes("allgone.test"), reply);
          // Failed for good: never tried again.
          assertEquals((await store.get(id))?.recipients.map((r) => r.status), ["failed"]);
          // The failure report waits for alice (route atrn: example.org is ours).
          const reports = (await store.list()).filter((m) => m.id !== id);
          assertEquals(reports.length, 1);
          const chunks: Uint8Array[] = [];
          for await (const c of store.readBody(reports[0]!.id)) chunks.push(c);
          const text = new TextDecoder().decode(
            Uint8Array.from(chunks.flatMap((c) => [...c])),
          );
          assert(text.includes("Final-Recipient: rfc822; bob@allgone.test\r\n"), text);
          assert(text.includes("Action: failed\r\nStatus: 5.4.4\r\n"), text);
          assert(text.includes("Diagnostic-Code: smtp; 550 5.4.4 "), text);
        } finally {
          await store.close();
        }
      });
    });
  } finally {
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  }
});
