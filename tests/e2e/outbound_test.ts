/**
 * E2E of issue 15's delivery to the world: the real `serve` with a submission port, a real DNS
 * server (dnsmasq) as `outbound.resolver`, and byte-exact receiving MTAs on 127.x.y.5x:25 (loopback(): this process's own addresses) (the
 * port a deployment uses; tests run as root). swaks submits with STARTTLS + AUTH PLAIN:
 * delivered byte-exact behind the trace header and a DKIM-Signature that python3-dkim
 * verifies; a 4xx is deferred and delivered on the retry (`outbound.retry: [1s]`); a 5xx
 * queues a failure report for the (local) sender, collected with ATRN.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { DkimKeyStore } from "../../src/dkim/keys.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { makeTestCa } from "../_helpers/certs.ts";
import { verifyDkim } from "../_helpers/dkim.ts";
import { allEvents, type LogEvent } from "../_helpers/log_lines.ts";
import {
  loopback,
  outboundServeConfig,
  startMxDns,
  submissionPort,
} from "../_helpers/outbound_world.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { addUser, removeTestFiles, runMain, startServer } from "../_helpers/server_process.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";
import { until } from "../_helpers/wait_until.ts";
import { parseExposition, valueOf } from "../observe/_prom_parse.ts";
import { swaksSubmit } from "./_swaks.ts";

const PASSWORD = "secret-password";
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

await toolTest("serve delivers submitted mail to the world: DKIM, retry, failure report", [
  "dnsmasq",
  "swaks",
  "openssl",
  "dkimverify",
], async (t) => {
  if (!canBindPort25("serve outbound e2e", "127.x.y.5x")) return;
  const ca = await makeTestCa();
  assert(ca !== undefined, "openssl made the test CA");
  await using dns = await startMxDns({
    "dest.test": loopback(51),
    "grey.test": loopback(52),
    "refuse.test": loopback(53),
  });
  const dest = await startCaptureServer({ host: loopback(51), port: 25 });
  let greylisted = 0;
  const grey = await startCaptureServer({
    host: loopback(52),
    port: 25,
    rcptReply: () => (greylisted++ === 0 ? "451 4.7.1 Greylisted, try again later" : undefined),
  });
  const refuse = await startCaptureServer({
    host: loopback(53),
    port: 25,
    rcptReply: () => "550 5.1.1 No such user here",
  });
  const server = await startServer({
    config: outboundServeConfig(dns, {
      tls: { cert: ca.certPath, key: ca.keyPath },
      outbound: { helo: "relay.test" },
      metrics: { listen: "127.0.0.1:0" },
    }),
  });
  const events = (): LogEvent[] => allEvents(server.logs());
  const alice = { user: "alice", password: PASSWORD, from: "alice@example.org" };
  const submit = async (to: string, file: string) => {
    const r = await swaksSubmit(submissionPort(server), alice, to, ["--data", `@${file}`]);
    assertEquals(r.code, 0, r.out);
    match(r.out, /250 2\.6\.0/);
  };
  /** `dkim keygen DOMAIN --selector SELECTOR ...more` on this server's config; must succeed. */
  const keygen = async (domain: string, selector: string, ...more: string[]) => {
    const r = await runMain([
      ...["dkim", "keygen", domain, "--selector", selector, ...more],
      ...["--config", server.configPath],
    ]);
    assertEquals(r.code, 0, r.stderr);
  };
  const metricsPort = server.listening.find((l) => l.proto === "metrics")?.port ?? 0;
  const dataFile = await Deno.makeTempFile({ suffix: ".eml" });
  try {
    await addUser(server.configPath, "alice", ["example.org"], PASSWORD);
    await keygen("example.org", "e2e", "--algorithm", "ed25519");
    const [key] = await new DkimKeyStore(server.dataDir).list();
    assert(key !== undefined);

    await t.step(
      "to a foreign domain: delivered byte-exact behind Received and DKIM-Signature",
      async () => {
        const message = "From: Alice <alice@example.org>\r\nTo: bob@dest.test\r\n" +
          "Subject: to the world\r\nMessage-ID: <e2e-1@example.org>\r\n\r\n" +
          "Hello out there.\r\n.a line starting with a dot\r\n";
        // swaks appends CRLF "." CRLF unless the data already ends with the closing dot.
        await Deno.writeFile(dataFile, enc(message + ".\r\n"));
        await submit("bob@dest.test", dataFile);
        await dest.waitForMessages(1, 15_000);
        const got = dest.messages[0];
        assert(got !== undefined);
        assertEquals([got.mailFrom, got.recipients], ["alice@example.org", ["bob@dest.test"]]);
        const text = dec(got.body);
        match(text, /^DKIM-Signature: v=1; a=ed25519-sha256;[^]*\r\nReceived: from client\.test /);
        assert(text.endsWith(`\r\n${message}`), text);
        const verdict = await verifyDkim(got.body, { txt: { [key.dnsName]: key.dnsText } });
        assert(verdict.ok, verdict.output);
        await until("the delivered line", () => events().some((e) => e.event === "delivered"));
        const line = events().find((e) => e.event === "delivered" && e.to === "bob@dest.test");
        assertEquals(line?.host, `mx.dest.test[${loopback(51)}]`);
        match(String(line?.reply), /^250 /);
      },
    );

    await t.step("a 4xx is deferred, then delivered on the retry a second later", async () => {
      await Deno.writeFile(
        dataFile,
        enc("From: alice@example.org\r\nSubject: grey\r\n\r\nhi\r\n.\r\n"),
      );
      await submit("carol@grey.test", dataFile);
      await grey.waitForMessages(1, 15_000);
      await until(
        "the delivered line",
        () => events().some((e) => e.event === "delivered" && e.to === "carol@grey.test"),
      );
      const deferred = events().find((e) => e.event === "deferred" && e.to === "carol@grey.test");
      const delivered = events().find((e) => e.event === "delivered" && e.to === "carol@grey.test");
      match(String(deferred?.reply), /^451 4\.7\.1/);
      const waitedMs = Date.parse(String(delivered?.time)) - Date.parse(String(deferred?.time));
      // outbound.retry [1s] with ±10% jitter.
      assert(waitedMs >= 900, `retried after ${waitedMs} ms`);
      assertEquals(grey.connections, 2);
    });

    await t.step(
      "a 5xx fails at once; the failure report waits for the sender's ATRN",
      async () => {
        await Deno.writeFile(
          dataFile,
          enc("From: alice@example.org\r\nSubject: nobody\r\n\r\nhi\r\n.\r\n"),
        );
        await submit("dan@refuse.test", dataFile);
        await until(
          "the failed line",
          () => events().some((e) => e.event === "failed" && e.to === "dan@refuse.test"),
        );
        assertEquals(refuse.messages.length, 0);
        await until("the report", () => events().some((e) => e.event === "dsn_queued"));
        const customer = await runScriptedCustomer({
          port: server.odmr[0]?.port ?? 0,
          auth: { mechanism: "CRAM-MD5", user: "alice", password: PASSWORD },
          atrn: "example.org",
        });
        match(String(customer.atrnReply), /^250 /);
        const report = customer.messages.find((m) => m.mailFrom === "");
        assert(report !== undefined, customer.transcript.join("\n"));
        assertEquals(report.rcpts, ["alice@example.org"]);
        const text = dec(report.data);
        match(text, /Action: failed/);
        match(text, /Final-Recipient: rfc822;\s*dan@refuse\.test/i);
        match(text, /550 5\.1\.1 No such user here/);
        // The report is about the submitted message: its headers come back.
        match(text, /Subject: nobody/);
      },
    );

    await t.step(
      "a From in another user's domain goes out unsigned (no borrowed signature)",
      async () => {
        await addUser(server.configPath, "bob", ["example.com"], PASSWORD);
        await keygen("example.com", "bob");
        const before = dest.messages.length;
        const forged = "From: Bob <bob@example.com>\r\nSubject: not bob\r\n\r\nhi\r\n";
        await Deno.writeFile(dataFile, enc(forged + ".\r\n"));
        await submit("erin@dest.test", dataFile);
        await dest.waitForMessages(before + 1, 15_000);
        const text = dec(dest.messages[before]?.body ?? new Uint8Array());
        assert(text.startsWith("Received: "), text);
        assert(!text.includes("DKIM-Signature"), text);
        assert(text.endsWith(`\r\n${forged}`), text);
      },
    );

    await t.step("metrics: deliveries by outcome", async () => {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, {
        signal: AbortSignal.timeout(5_000),
      });
      const exp = parseExposition(await res.text());
      const v = (outcome: string) =>
        valueOf(exp, "odmr_relay_outbound_deliveries_total", { outcome });
      assertEquals([v("delivered"), v("deferred"), v("failed")], [3, 1, 1]);
    });
  } finally {
    await Deno.remove(dataFile);
    assertEquals(await server.stop(), 0);
    await removeTestFiles(server);
    await ca.cleanup();
    await dest.close();
    await grey.close();
    await refuse.close();
  }
});
