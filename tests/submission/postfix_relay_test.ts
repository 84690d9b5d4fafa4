/**
 * E2E: a real Postfix as the home server's MTA relays through our submission port, configured
 * with the main.cf lines the README gives ("Sending through the VPS"): relayhost, SASL from a
 * hash: password map, TLS required and verified. A wrong password keeps the mail deferred in
 * Postfix's queue (nothing lost, nothing relayed) until the right one lets it through.
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
import { postfixUnavailable, startPrivatePostfix } from "../_helpers/postfix.ts";
import { forTarget, mainCfForTarget, readReadmePostfix } from "./_readme_postfix.ts";

const PASSWORD = "secret-password";
const POSTFIX_DEADLINE_MS = 30_000;

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
  ["openssl", "postfix", "postmap", "postqueue", "sendmail"],
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
    const server = await startServer({
      config: {
        tls: { cert: ca.certPath, key: ca.keyPath },
        submission: { listen: ["127.0.0.1:0"] },
      },
    });
    try {
      await addUser(server.configPath, "alice", ["example.org"], PASSWORD);
      await addUser(server.configPath, "bob", ["example.com"], PASSWORD);
      const sub = server.listening.find((e) => e.proto === "submission");
      assert(sub !== undefined, "a submission listener was announced");
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
          const q = await postfix.waitQueue(
            (q) => q.some((m) => m.recipients.some((r) => /535/.test(r.delay_reason ?? ""))),
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
    } finally {
      await server.stop();
      await removeTestFiles(server);
      await ca.cleanup();
    }
  },
);
