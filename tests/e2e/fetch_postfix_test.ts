/**
 * E2E with a real Postfix as the home server's MTA behind `fetch` (deliver_to smtp://): its
 * smtpd offers PIPELINING and is told to drop clients that break RFC 2920's rules
 * (`smtpd_forbid_unauth_pipelining`). `fetch --once` relays the provider's pipelined drain
 * ("." with the next MAIL/RCPT/DATA, #13): every message arrives once behind Postfix, a
 * recipient Postfix does not know gets its 550 upstream and is marked failed on the provider,
 * the others leave the queue. A message's one recipient is answered 250 ahead of Postfix's
 * reply, whose 550 then comes back at the end of data: failed all the same, never delivered.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { runFetchOnce } from "../_helpers/fetch_process.ts";
import { toolTest } from "../_helpers/tools.ts";
import { queuedStatuses, withPostfixRelay } from "../_helpers/postfix_relay.ts";

const MESSAGES = 30;
const DELIVERY_DEADLINE_MS = 30_000;

/**
 * Queues MESSAGES messages (message i to `recipients(i)`), runs `fetch --once` into Postfix,
 * which knows only `u<i>@example.org`: those arrive once each, the unknown ones are failed on
 * the provider (Postfix's 550), none deferred.
 */
function drainIntoPostfix(what: string, recipients: (i: number) => string[]) {
  const messages = Array.from({ length: MESSAGES }, (_, i) => recipients(i));
  const known = messages.flat().filter((a) => a.startsWith("u")).sort();
  const unknown = messages.flat().filter((a) => !a.startsWith("u"));
  return withPostfixRelay({
    what,
    messages: messages.map((to) => ({ from: "s@remote.test", to })),
    known: Array.from({ length: MESSAGES }, (_, i) => `u${i}@example.org`),
  }, async ({ server, capture, dir, port }) => {
    const run = await runFetchOnce(dir, {
      server: `127.0.0.1:${server.odmr[0]!.port}`,
      "deliver_to": `smtp://127.0.0.1:${port}`,
    });
    // The unknown recipients failed permanently: a refusal, not a temporary failure.
    assertEquals(run.code, 0, run.stderr);
    await capture.waitForMessages(
      messages.filter((to) => to.some((a) => a.startsWith("u"))).length,
      DELIVERY_DEADLINE_MS,
    );
    assertEquals(
      capture.messages.map((m) => m.recipients.join()).sort(),
      known,
    );
    // (Their bounces to s@remote.test wait in the outbound queue.)
    assertEquals(
      await queuedStatuses(server.configPath, "example.org"),
      unknown.map((a) => `${a}:failed`).sort(),
    );
  });
}

const POSTFIX_TOOLS = ["postfix", "postmap", "postqueue", "sendmail"];

await toolTest(
  "fetch --once hands a pipelined drain to a real Postfix: each message once, its refusals upstream (#13)",
  POSTFIX_TOOLS,
  // Every third message also names a recipient Postfix does not know.
  () =>
    drainIntoPostfix(
      "fetch into a real Postfix",
      (i) => [`u${i}@example.org`, ...(i % 3 === 0 ? [`nobody${i}@example.org`] : [])],
    ),
);

await toolTest(
  "fetch --once into a real Postfix: a message whose one recipient Postfix refuses is answered at the end of data, failed on the provider, never delivered (#13)",
  POSTFIX_TOOLS,
  // Every third message has one recipient only, unknown to Postfix.
  () =>
    drainIntoPostfix(
      "fetch into a real Postfix, single recipients refused",
      (i) => [i % 3 === 0 ? `nobody${i}@example.org` : `u${i}@example.org`],
    ),
);
