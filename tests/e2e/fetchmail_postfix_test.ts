/**
 * E2E with the real fetchmail (`protocol ODMR`, plain) splicing the reversed session to a real
 * Postfix: our provider then talks to Postfix's smtpd, which offers CHUNKING and PIPELINING but
 * not our X-LAST-ENDS-TRANSACTION, so several messages are in flight as BDAT groups, with RSET
 * where the previous outcome is not known. Every third message is only for a recipient Postfix
 * does not know (550, then 554 to its BDAT; Postfix 3 ends that transaction itself, which RFC
 * 3030 does not promise): each other message arrives once, under its own sender, and the
 * refused ones are failed on the provider (#13).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { runFetchmail } from "../_helpers/fetchmail.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { submit } from "../_helpers/smtp_submit.ts";
import { isCi, toolTest } from "../_helpers/tools.ts";
import { postfixUnavailable, startPrivatePostfix } from "../_helpers/postfix.ts";
import { freePort } from "../_helpers/spawned.ts";

const enc = new TextEncoder();
const MESSAGES = 24;
const DELIVERY_DEADLINE_MS = 30_000;
/** Every third message is only for a recipient Postfix does not know. */
const isRefused = (i: number) => i % 3 === 1;

type Listed = { recipients: { address: string; status: string }[] }[];

await toolTest(
  "fetchmail splicing to a real Postfix: a message behind one Postfix refused whole arrives once, under its own sender (#13)",
  ["fetchmail", "postfix", "postmap", "postqueue", "sendmail"],
  async () => {
    const why = await postfixUnavailable();
    if (why !== undefined) {
      if (isCi()) throw new Error(`${why}, and CI=true forbids skipping`);
      // deno-lint-ignore no-console -- the printed reason is the point of a skip (docs/architecture.md "Conventions")
      console.log(`skip: fetchmail into a real Postfix: ${why}`);
      return;
    }
    const server = await startServer();
    const dir = await Deno.makeTempDir({ prefix: "odmr-fetchmail-postfix-" });
    const capture = await startCaptureServer();
    try {
      await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
      const smtpPort = server.smtp[0]!.port;
      for (let i = 0; i < MESSAGES; i++) {
        const to = isRefused(i) ? `nobody${i}@example.org` : `u${i}@example.org`;
        const body = enc.encode(`Subject: m${i}\r\n\r\nbody ${i}\r\n`);
        const r = await submit({ port: smtpPort, from: `s${i}@remote.test`, to: [to], body });
        assert(r.final?.startsWith("250"), r.replies.join(" | "));
      }
      const kept = Array.from({ length: MESSAGES }, (_, i) => i).filter((i) => !isRefused(i));
      const known = kept.map((i) => `u${i}@example.org=OK`).join(", ");
      const port = freePort();
      await using postfix = await startPrivatePostfix({
        "myhostname": "pi.example.org",
        "mynetworks": "127.0.0.0/8",
        "relay_domains": "example.org",
        "relay_recipient_maps": `inline:{ ${known} }`,
        "transport_maps": `inline:{ example.org=smtp:[127.0.0.1]:${capture.port} }`,
        "smtpd_recipient_restrictions": "permit_mynetworks, reject",
        "smtpd_forbid_unauth_pipelining": "yes",
        "smtp_dns_support_level": "disabled",
      }, { parentDir: dir, smtpdPort: port });

      const run = await runFetchmail({
        port: server.odmr[0]!.port,
        smtpPort: port,
        domains: ["example.org"],
      });
      assert(/CHUNKING/.test(run.output), "Postfix did not offer CHUNKING through fetchmail");
      await capture.waitForMessages(kept.length, DELIVERY_DEADLINE_MS);
      assertEquals(
        capture.messages.map((m) => `${m.mailFrom} ${m.recipients.join()}`).sort(),
        kept.map((i) => `s${i}@remote.test u${i}@example.org`).sort(),
      );
      const left = await queueList(server.configPath, "example.org") as Listed;
      const statuses = left.flatMap((m) =>
        m.recipients.filter((r) => r.address.endsWith("@example.org"))
          .map((r) => `${r.address}:${r.status}`)
      );
      assertEquals(
        statuses.sort(),
        Array.from({ length: MESSAGES }, (_, i) => i).filter(isRefused)
          .map((i) => `nobody${i}@example.org:failed`).sort(),
      );
      const log = await postfix.log();
      assert(!/improper command pipelining/.test(log), log);
    } finally {
      await capture.close();
      await server.stop();
      await removeTestFiles(server);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
