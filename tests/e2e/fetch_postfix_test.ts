/**
 * E2E with a real Postfix as the home server's MTA behind `fetch` (deliver_to smtp://): its
 * smtpd offers PIPELINING and is told to drop clients that break RFC 2920's rules
 * (`smtpd_forbid_unauth_pipelining`). `fetch --once` relays the provider's pipelined drain
 * ("." with the next MAIL/RCPT/DATA, #13): every message arrives once behind Postfix, a
 * recipient Postfix does not know gets its 550 upstream and is marked failed on the provider,
 * the others leave the queue.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { runFetchOnce } from "../_helpers/fetch_process.ts";
import { toolTest } from "../_helpers/tools.ts";
import { queuedStatuses, withPostfixRelay } from "../_helpers/postfix_relay.ts";

const MESSAGES = 30;
const DELIVERY_DEADLINE_MS = 30_000;

await toolTest(
  "fetch --once hands a pipelined drain to a real Postfix: each message once, its refusals upstream (#13)",
  ["postfix", "postmap", "postqueue", "sendmail"],
  () =>
    withPostfixRelay({
      what: "fetch into a real Postfix",
      // Every third message also names a recipient Postfix does not know.
      messages: Array.from({ length: MESSAGES }, (_, i) => ({
        from: "s@remote.test",
        to: [`u${i}@example.org`, ...(i % 3 === 0 ? [`nobody${i}@example.org`] : [])],
      })),
      known: Array.from({ length: MESSAGES }, (_, i) => `u${i}@example.org`),
    }, async ({ server, capture, dir, port }) => {
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
      assertEquals(
        await queuedStatuses(server.configPath, "example.org"),
        Array.from({ length: MESSAGES / 3 }, (_, k) => `nobody${k * 3}@example.org:failed`).sort(),
      );
    }),
);
