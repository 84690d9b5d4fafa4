/**
 * E2E with a real Postfix as the home server's MTA behind `fetch` (deliver_to smtp://): its
 * smtpd offers PIPELINING and is told to drop clients that break RFC 2920's rules
 * (`smtpd_forbid_unauth_pipelining`). `fetch --once` relays the provider's pipelined drain
 * ("." with the next MAIL/RCPT/DATA, #13): every message arrives once behind Postfix, a
 * recipient Postfix does not know gets its 550 upstream and is marked failed on the provider,
 * the others leave the queue.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { runFetchOnce } from "../_helpers/fetch_process.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { submit } from "../_helpers/smtp_submit.ts";
import { isCi, toolTest } from "../_helpers/tools.ts";
import { postfixUnavailable, startPrivatePostfix } from "../_helpers/postfix.ts";
import { freePort } from "../_helpers/spawned.ts";

const enc = new TextEncoder();
const MESSAGES = 30;
const DELIVERY_DEADLINE_MS = 30_000;

type Listed = { recipients: { address: string; status: string }[] }[];

await toolTest(
  "fetch --once hands a pipelined drain to a real Postfix: each message once, its refusals upstream (#13)",
  ["postfix", "postmap", "postqueue", "sendmail"],
  async () => {
    const why = await postfixUnavailable();
    if (why !== undefined) {
      if (isCi()) throw new Error(`${why}, and CI=true forbids skipping`);
      // deno-lint-ignore no-console -- the printed reason is the point of a skip (docs/architecture.md "Conventions")
      console.log(`skip: fetch into a real Postfix: ${why}`);
      return;
    }
    const server = await startServer();
    const dir = await Deno.makeTempDir({ prefix: "odmr-fetch-postfix-" });
    const capture = await startCaptureServer();
    try {
      await addUser(server.configPath, "alice", ["example.org", "example.com"], "alice-pw");
      const smtpPort = server.smtp[0]!.port;
      // Every third message also names a recipient Postfix does not know.
      for (let i = 0; i < MESSAGES; i++) {
        const to = [`u${i}@example.org`, ...(i % 3 === 0 ? [`nobody${i}@example.org`] : [])];
        const body = enc.encode(`Subject: m${i}\r\n\r\nbody ${i}\r\n`);
        const r = await submit({ port: smtpPort, from: "s@remote.test", to, body });
        assert(r.final?.startsWith("250"), r.replies.join(" | "));
      }
      const known = Array.from({ length: MESSAGES }, (_, i) => `u${i}@example.org=OK`).join(", ");
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

      const run = await runFetchOnce(dir, {
        server: `127.0.0.1:${server.odmr[0]!.port}`,
        "deliver_to": `smtp://127.0.0.1:${port}`,
      });
      // The unknown recipients failed permanently: a refusal, not a temporary failure.
      assertEquals(run.code, 0, run.stderr);
      await capture.waitForMessages(MESSAGES, DELIVERY_DEADLINE_MS);
      assertEquals(
        capture.messages.map((m) => m.recipients.join()).sort(),
        Array.from({ length: MESSAGES }, (_, i) => `u${i}@example.org`).sort(),
      );
      // (Their bounces to s@remote.test wait in the outbound queue.)
      const left = await queueList(server.configPath, "example.org") as Listed;
      const statuses = left.flatMap((m) =>
        m.recipients.filter((r) => r.address.endsWith("@example.org"))
          .map((r) => `${r.address}:${r.status}`)
      );
      assertEquals(
        statuses.sort(),
        Array.from({ length: MESSAGES / 3 }, (_, k) => `nobody${k * 3}@example.org:failed`).sort(),
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
