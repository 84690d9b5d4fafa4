/**
 * E2E: a user's `MAIL FROM:<>` mail (its MTA's bounces, auto-replies) submitted through the
 * real `serve`'s submission port goes out DKIM-signed by its From domain, the user's own, and
 * python3-dkim verifies the signature. Before the queue kept who submitted a message, such mail
 * went out unsigned (the signer found the key's owner through the envelope sender, which `<>`
 * has not), and failed DMARC at receivers with p=reject.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { DkimKeyStore } from "../../src/dkim/keys.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { verifyDkim } from "../_helpers/dkim.ts";
import {
  loopback,
  outboundServeConfig,
  startMxDns,
  submissionPort,
} from "../_helpers/outbound_world.ts";
import { addUser, removeTestFiles, runMain, startServer } from "../_helpers/server_process.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";
import { swaks } from "./_swaks.ts";

const PASSWORD = "secret-password";

await toolTest("serve signs a user's <> mail by its From domain, the user's own", [
  "dnsmasq",
  "swaks",
  "dkimverify",
], async () => {
  if (!canBindPort25("serve <> DKIM e2e", "127.x.y.58")) return;
  await using dns = await startMxDns({ "dest.test": loopback(58) });
  const dest = await startCaptureServer({ host: loopback(58), port: 25 });
  const server = await startServer({ config: outboundServeConfig(dns) });
  try {
    await addUser(server.configPath, "alice", ["example.org"], PASSWORD);
    const keygen = await runMain([
      ...["dkim", "keygen", "example.org", "--selector", "bounce", "--algorithm", "ed25519"],
      ...["--config", server.configPath],
    ]);
    assertEquals(keygen.code, 0, keygen.stderr);
    const [key] = await new DkimKeyStore(server.dataDir).list();
    assert(key !== undefined);
    const message = "From: Mail Delivery System <MAILER-DAEMON@example.org>\r\n" +
      "To: bob@dest.test\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
      "Auto-Submitted: auto-replied\r\n\r\nYour message could not be delivered.\r\n";
    const r = await swaks(submissionPort(server), [
      ...["--auth", "CRAM-MD5", "--auth-user", "alice", "--auth-password", PASSWORD],
      ...["--from", "<>", "--to", "bob@dest.test", "--data", message],
    ]);
    assertEquals(r.code, 0, r.out);
    match(r.out, /^ -> MAIL FROM:<>/m);
    await dest.waitForMessages(1, 15_000);
    const got = dest.messages[0];
    assert(got !== undefined);
    assertEquals([got.mailFrom, got.recipients], ["", ["bob@dest.test"]]);
    const text = new TextDecoder().decode(got.body);
    match(text, /^DKIM-Signature: v=1; a=ed25519-sha256;[^]*\bd=example\.org;/);
    const verdict = await verifyDkim(got.body, { txt: { [key.dnsName]: key.dnsText } });
    assert(verdict.ok, verdict.output);
  } finally {
    assertEquals(await server.stop(), 0);
    await removeTestFiles(server);
    await dest.close();
  }
});
