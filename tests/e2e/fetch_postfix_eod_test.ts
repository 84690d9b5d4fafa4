/**
 * A real Postfix behind `fetch` that refuses one message at the end of data
 * (`smtpd_end_of_data_restrictions`, as a milter or policy server would) keeps that message's
 * envelope afterwards: the next MAIL gets `503 5.5.1 Error: nested MAIL command` (Postfix 3.7)
 * until the client says RSET. That 503 is Postfix's state, not a refusal of the next message:
 * the next message must be delivered in the same poll, never failed and bounced to its sender;
 * only the refused one gets its refusal upstream. Both with PIPELINING (the next MAIL went out
 * with the ".") and without (it waited for the refusal).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { postfixUnavailable, startPrivatePostfix } from "../_helpers/postfix.ts";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { submit } from "../_helpers/smtp_submit.ts";
import { runFetchOnce } from "../_helpers/fetch_process.ts";
import { isCi } from "../_helpers/tools.ts";

const WHAT = "fetch: a message Postfix refuses at end of data does not fail the next one";
const why = await postfixUnavailable();
if (why !== undefined && isCi()) throw new Error(`${why}, and CI=true forbids skipping`);
// deno-lint-ignore no-console -- the printed reason is the point of a skip
if (why !== undefined) console.log(`skip: ${WHAT}: ${why}`);

const MESSAGES = 3;
const DELIVERY_DEADLINE_MS = 30_000;
const enc = new TextEncoder();

type Listed = { from: string; recipients: { address: string; status: string }[] }[];

const CASES = [
  { action: "REJECT", refusedStatus: "failed", pipelining: true },
  { action: "DEFER", refusedStatus: "queued", pipelining: true },
  { action: "REJECT", refusedStatus: "failed", pipelining: false },
] as const;

for (const { action, refusedStatus, pipelining } of CASES) {
  const name = `${WHAT} (${action}${pipelining ? "" : ", no PIPELINING"})`;
  Deno.test({ name, ignore: why !== undefined }, async () => {
    const server = await startServer();
    const dir = await Deno.makeTempDir({ prefix: "odmr-postfix-eod-" });
    const capture = await startCaptureServer();
    try {
      await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
      for (let i = 0; i < MESSAGES; i++) {
        const body = enc.encode(`Subject: m${i}\r\n\r\nbody ${i}\r\n`);
        const r = await submit({
          port: server.smtp[0]!.port,
          from: "s@remote.test",
          to: [`u${i}@example.org`],
          body,
        });
        assertEquals(r.final?.slice(0, 3), "250", r.replies.join(" | "));
      }
      await using postfix = await startPrivatePostfix({
        "myhostname": "pi.example.org",
        "mynetworks": "127.0.0.0/8",
        "relay_domains": "example.org",
        "transport_maps": `inline:{ example.org=smtp:[127.0.0.1]:${capture.port} }`,
        "smtpd_recipient_restrictions": "permit_mynetworks, reject",
        // u0's message is refused after its body (the last recipient is the one checked).
        "smtpd_end_of_data_restrictions":
          `check_recipient_access inline:{ u0@example.org=${action} }`,
        "smtp_dns_support_level": "disabled",
        ...(pipelining ? {} : { "smtpd_discard_ehlo_keywords": "pipelining" }),
      }, { parentDir: dir, smtpdPort: "spare" });
      const run = await runFetchOnce(dir, {
        server: `127.0.0.1:${server.odmr[0]!.port}`,
        "deliver_to": `smtp://127.0.0.1:${postfix.smtpdPort}`,
        domains: ["example.org"],
      });
      const output = run.stderr;
      const left = await queueList(server.configPath) as Listed;
      // Only u0 is left on the provider; a bounce goes to the sender only for a refusal.
      assertEquals(
        left.flatMap((m) => m.recipients.map((r) => `${r.address}:${r.status}`)).sort(),
        refusedStatus === "failed"
          ? ["s@remote.test:queued", "u0@example.org:failed"]
          : ["u0@example.org:queued"],
        output,
      );
      await capture.waitForMessages(MESSAGES - 1, DELIVERY_DEADLINE_MS);
      assertEquals(
        capture.messages.map((m) => m.recipients.join()).sort(),
        ["u1@example.org", "u2@example.org"],
        output,
      );
    } finally {
      await capture.close();
      await server.stop();
      await removeTestFiles(server);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
}
