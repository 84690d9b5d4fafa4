/**
 * E2E: a real Postfix as the home server's MTA relays through our submission port, configured
 * with the main.cf lines the README gives ("Sending through the VPS"): relayhost, SASL from a
 * hash: password map, TLS required and verified. A wrong password keeps the mail deferred in
 * Postfix's queue (nothing lost, nothing relayed) until the right one lets it through. Mail
 * for our own domains waits for ATRN; mail for another domain goes out through our worker to
 * that domain's MX (a real DNS server, a byte-exact receiver on port 25), DKIM-signed.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import {
  addUser,
  queueList,
  removeTestFiles,
  runMain,
  startServer,
} from "../_helpers/server_process.ts";
import { isCi, toolTest } from "../_helpers/tools.ts";
import { makeTestCa } from "../_helpers/certs.ts";
import { runFetchOnce } from "../_helpers/fetch_process.ts";
import { postfixUnavailable, startPrivatePostfix } from "../_helpers/postfix.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { verifyDkim } from "../_helpers/dkim.ts";
import { loopback, startMxDns } from "../_helpers/outbound_world.ts";
import { forTarget, mainCfForTarget, readReadmePostfix } from "./_readme_postfix.ts";

const PASSWORD = "secret-password";
const POSTFIX_DEADLINE_MS = 30_000;
/** The foreign domain's MX: a loopback address of this process's own (port 25). */
const FOREIGN_MX = loopback(47);

function message(subject: string): string {
  return `From: Alice <alice@example.org>\nTo: bob@example.com\nSubject: ${subject}\n\nhello from the Pi\n`;
}

interface Queued {
  id: string;
  from: string;
  recipients: { address: string }[];
}

Deno.test("README: the Pi's Postfix lines are the ones the relay test runs", async () => {
  const readme = await readReadmePostfix();
  // The settings this test proves; a README that drops or adds one must change the test too.
  assertEquals(Object.keys(readme.mainCf).sort(), [
    "myorigin",
    "relayhost",
    "smtp_sasl_auth_enable",
    "smtp_sasl_password_maps",
    "smtp_sasl_security_options",
    "smtp_tls_CAfile",
    "smtp_tls_security_level",
  ]);
  assertEquals(readme.mainCf.relayhost, "[relay.example.net]:587");
  assertEquals(readme.mainCf.smtp_tls_security_level, "secure");
  // The password map's key is written exactly as relayhost (Postfix looks it up by that name).
  match(readme.passwordLine, /^\[relay\.example\.net\]:587 alice:PASSWORD$/);
});

await toolTest(
  "submission: Postfix relays through the submission port (relayhost, SASL, TLS verified)",
  ["openssl", "postfix", "postmap", "postqueue", "sendmail", "dnsmasq", "dkimverify"],
  async (t) => {
    const why = await postfixUnavailable();
    if (why !== undefined) {
      if (isCi()) throw new Error(`${why}, and CI=true forbids skipping`);
      // deno-lint-ignore no-console -- the printed reason is the point of a skip (docs/architecture.md "Conventions")
      console.log(`skip: submission: Postfix relays through the submission port: ${why}`);
      return;
    }
    const ca = await makeTestCa();
    assert(ca !== undefined, "openssl made the test CA");
    // The world beyond the VPS: foreign.test's MX is a byte-exact capture server on port 25 of
    // a loopback address no other test uses.
    await using dns = await startMxDns({ "foreign.test": FOREIGN_MX });
    const world = await startCaptureServer({ host: FOREIGN_MX, port: 25 });
    const server = await startServer({
      config: {
        tls: { cert: ca.certPath, key: ca.keyPath },
        submission: { listen: ["127.0.0.1:0", { address: "127.0.0.1:0", tls: "implicit" }] },
        outbound: {
          resolver: dns.address,
          helo: "relay.example.net",
          "allow_private_mx": true,
        },
      },
    });
    try {
      await addUser(server.configPath, "alice", ["example.org"], PASSWORD);
      await addUser(server.configPath, "bob", ["example.com"], PASSWORD);
      const sub = server.listening.find((e) => e.proto === "submission" && e.tls === "starttls");
      assert(sub !== undefined, "a STARTTLS submission listener was announced");
      const implicit = server.listening.find((e) =>
        e.proto === "submission" && e.tls === "implicit"
      );
      assert(implicit !== undefined, "an implicit-TLS submission listener was announced");
      const readme = await readReadmePostfix();
      // The certificate names localhost; Postfix checks it against the relayhost's name.
      const target = {
        host: "localhost",
        port: sub.port,
        passwordMap: `${ca.dir}/sasl_passwd`,
        caFile: ca.caCertPath,
      };
      const passwordLine = (password: string) =>
        `${forTarget(readme.passwordLine, target).replace("PASSWORD", password)}\n`;
      await using postfix = await startPrivatePostfix({
        ...mainCfForTarget(readme.mainCf, target),
        "myhostname": "pi.example.org",
        // No DNS in the test: localhost from /etc/hosts (the README's relay has DNS).
        "smtp_host_lookup": "native",
        "smtp_dns_support_level": "disabled",
        // Logs "Verified TLS connection established", which the test reads.
        "smtp_tls_loglevel": "1",
      });
      const ours = async () =>
        (await queueList(server.configPath, "example.com") as Queued[]).filter((m) =>
          m.from === "alice@example.org"
        );

      await t.step(
        "a wrong SASL password: deferred in Postfix (535), nothing relayed",
        async () => {
          await postfix.writeHashTable(target.passwordMap, passwordLine("wrong-password"));
          await postfix.reload(); // the SMTP client reopens the map
          await postfix.sendmail("alice@example.org", ["bob@example.com"], message("first"));
          // Deferred with the 535: qmgr may briefly move it back to `active` for its retry,
          // still carrying the reason, so wait for the deferred state itself.
          const q = await postfix.waitQueue(
            (q) =>
              q.some((m) =>
                m.queue_name === "deferred" &&
                m.recipients.some((r) => /535/.test(r.delay_reason ?? ""))
              ),
            POSTFIX_DEADLINE_MS,
          );
          assertEquals(q.length, 1);
          assertEquals(q[0]?.queue_name, "deferred");
          assertEquals(q[0]?.sender, "alice@example.org");
          match(q[0]?.recipients[0]?.delay_reason ?? "", /535 5\.7\.8/);
          assertEquals(await ours(), []);
          match(server.logs(), /event=auth_failed conn=\d+ proto=submission remote=\S+ user=alice/);
        },
      );

      await t.step(
        "the right password: the deferred mail and a new one reach our queue",
        async () => {
          await postfix.writeHashTable(target.passwordMap, passwordLine(PASSWORD));
          await postfix.reload();
          await postfix.flush();
          await postfix.sendmail("alice@example.org", ["bob@example.com"], message("second"));
          await postfix.waitQueue((q) => q.length === 0, POSTFIX_DEADLINE_MS);
          const queued = await ours();
          assertEquals(queued.length, 2);
          for (const m of queued) {
            assertEquals(m.recipients.map((r) => r.address), ["bob@example.com"]);
          }
          const log = await postfix.log();
          match(log, /status=sent/);
          // `secure`: Postfix verified our certificate against its CAfile.
          match(log, /Verified TLS connection established to localhost/);
          const shown = await runMain([
            "queue",
            "show",
            queued[0]!.id,
            "--config",
            server.configPath,
          ]);
          // TLS and AUTH, as the trace header records them (RFC 3848).
          match(shown.stdout, /with ESMTPSA/);
          match(shown.stdout, /Subject: (first|second)/);
          // Cyrus SASL in Postfix picks the strongest mechanism both sides know.
          match(server.logs(), /event=auth conn=\d+ proto=submission user=alice mechanism=\S+/);
        },
      );

      await t.step("smtp_sasl_mechanism_filter = plain: AUTH PLAIN under TLS", async () => {
        await postfix.configure({ "smtp_sasl_mechanism_filter": "plain" });
        await postfix.sendmail("alice@example.org", ["bob@example.com"], message("third"));
        await postfix.waitQueue((q) => q.length === 0, POSTFIX_DEADLINE_MS);
        assertEquals((await ours()).length, 3);
        match(server.logs(), /event=auth conn=\d+ proto=submission user=alice mechanism=PLAIN/);
      });

      await t.step("port 465: smtp_tls_wrappermode = yes (implicit TLS)", async () => {
        // The README's 465 variant: relayhost on the implicit-TLS port, its own map line.
        const at465 = { ...target, port: implicit.port };
        const line = forTarget(readme.passwordLine, at465).replace("PASSWORD", PASSWORD);
        await postfix.writeHashTable(target.passwordMap, `${line}\n`);
        await postfix.configure({
          "relayhost": `[localhost]:${implicit.port}`,
          "smtp_tls_wrappermode": "yes",
          "smtp_sasl_mechanism_filter": "",
        });
        await postfix.sendmail("alice@example.org", ["bob@example.com"], message("fourth"));
        await postfix.waitQueue((q) => q.length === 0, POSTFIX_DEADLINE_MS);
        assertEquals((await ours()).length, 4);
        match(
          await postfix.log(),
          new RegExp(`relay=localhost\\[127\\.0\\.0\\.1\\]:${implicit.port}, .*status=sent`),
        );
        // Back to the README's main lines for the steps below.
        await postfix.writeHashTable(target.passwordMap, passwordLine(PASSWORD));
        await postfix.configure({
          "relayhost": `[localhost]:${sub.port}`,
          "smtp_tls_wrappermode": "no",
        });
      });

      await t.step("bob collects all four by ATRN (fetch --once into a Maildir)", async () => {
        const dir = `${ca.dir}/bob`;
        await Deno.mkdir(dir);
        await Deno.writeTextFile(`${dir}/password`, `${PASSWORD}\n`, { mode: 0o600 });
        const odmr = server.odmr[0];
        assert(odmr !== undefined);
        const r = await runFetchOnce(dir, {
          server: `127.0.0.1:${odmr.port}`,
          user: "bob",
          domains: ["example.com"],
          "deliver_to": `maildir:${dir}/Maildir`,
        });
        assertEquals(r.code, 0, r.stderr);
        const texts: string[] = [];
        for await (const e of Deno.readDir(`${dir}/Maildir/new`)) {
          texts.push(await Deno.readTextFile(`${dir}/Maildir/new/${e.name}`));
        }
        assertEquals(
          texts.map((x) => x.match(/^Subject: (\w+)$/m)?.[1]).sort(),
          ["first", "fourth", "second", "third"],
        );
        for (const x of texts) match(x, /\n\nhello from the Pi\n$/);
        assertEquals(await ours(), []);
      });

      await t.step(
        "one message to bob and to a foreign domain: bob's queued for ATRN, carol's is " +
          "DKIM-signed and delivered to foreign.test's MX",
        async () => {
          const keygen = await runMain([
            "dkim",
            "keygen",
            "example.org",
            "--selector",
            "pi",
            "--algorithm",
            "ed25519",
            "--config",
            server.configPath,
          ]);
          assertEquals(keygen.code, 0, keygen.stderr);
          const listed = await runMain(["dkim", "list", "--json", "--config", server.configPath]);
          const keys = JSON.parse(listed.stdout) as { "dns_name": string; "dns_txt": string }[];
          const key = keys[0];
          assert(key !== undefined, listed.stdout);
          await postfix.sendmail(
            "alice@example.org",
            ["bob@example.com", "carol@foreign.test"],
            "From: Alice <alice@example.org>\nTo: bob@example.com, carol@foreign.test\n" +
              "Subject: out\n\nto the world\n",
          );
          await postfix.waitQueue((q) => q.length === 0, POSTFIX_DEADLINE_MS);
          await world.waitForMessages(1, POSTFIX_DEADLINE_MS);
          const got = world.messages[0];
          assert(got !== undefined);
          assertEquals(got.mailFrom, "alice@example.org");
          assertEquals(got.recipients, ["carol@foreign.test"]);
          const text = new TextDecoder().decode(got.body);
          match(text, /^DKIM-Signature: v=1; a=ed25519-sha256;/);
          match(text, /with ESMTPSA/);
          match(text, /\r\n\r\nto the world\r\n$/);
          const verdict = await verifyDkim(got.body, {
            txt: { [key.dns_name.replace(/\.$/, "")]: key.dns_txt },
          });
          assert(verdict.ok, verdict.output);
          // bob's copy waits for ATRN; nothing for carol stays queued.
          const queued = await queueList(server.configPath) as Queued[];
          assertEquals(
            queued.flatMap((m) => m.recipients.map((r) => r.address)),
            ["bob@example.com"],
          );
          match(server.logs(), /event=delivered .*to=carol@foreign\.test/);
        },
      );

      await t.step(
        "myorigin: root's mail leaves as root@example.org; another sender domain is bounced " +
          "by Postfix with 553 5.7.1",
        async () => {
          await postfix.sendmail(undefined, ["bob@example.com"], message("from root"));
          await postfix.sendmail("root@pi.invalid", ["bob@example.com"], message("stray"));
          await postfix.waitQueue((q) => q.length === 0, POSTFIX_DEADLINE_MS);
          const queued = await queueList(server.configPath, "example.com") as Queued[];
          // (bob's copy from alice of the step above still waits for ATRN.)
          assertEquals(
            queued.map((m) => m.from).filter((f) => f !== "alice@example.org"),
            ["root@example.org"],
          );
          match(
            await postfix.log(),
            /to=<bob@example\.com>.*status=bounced \(host localhost\[127\.0\.0\.1\] said: 553 5\.7\.1 /,
          );
        },
      );
    } finally {
      await world.close();
      await server.stop();
      await removeTestFiles(server);
      await ca.cleanup();
    }
  },
);
