/**
 * Review wt16-r1 A: a `BDAT 0` chunk (not LAST) moves nothing forward: no octet, no message. The
 * session budget (session_budget.ts) counts NOOP, RSET, MAIL and RCPT so that a client that never
 * delivers is cut after a bounded number of commands (SECURITY.md: "~1620 commands at the
 * defaults"), but an empty chunk is counted by nothing: each is answered 250 and may come just
 * before `smtp.timeout`, so a client holds its connection slot for ever. BDAT chunks with octets
 * are bounded by `max_message_size` (SECURITY.md); an empty one is not.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startReady } from "./_session.ts";

const MAX_IDLE = 10;
const MAX_ATTEMPTS = 4;

Deno.test("receiver: empty BDAT chunks (not LAST) are bounded like NOOP: the session ends with 421 within the idle budget", async () => {
  const s = await startReady({
    options: { maxIdleCommands: MAX_IDLE, maxAttempts: MAX_ATTEMPTS },
  });
  assertEquals(await s.client.command("MAIL FROM:<a@b.test>"), "250 2.1.0 Sender OK");
  assertEquals(await s.client.command("RCPT TO:<x@d.test>"), "250 2.1.5 OK");
  // NOOP in the same place is cut at MAX_IDLE + 1; allow ten times as many empty chunks.
  const tries = 10 * (MAX_IDLE + 1);
  let last = "";
  let sent = 0;
  for (; sent < tries; sent++) {
    last = await s.client.command("BDAT 0");
    if (!last.startsWith("250")) break;
  }
  assertEquals(
    last.slice(0, 9),
    "421 4.7.0",
    `${sent} empty chunks were each answered 250 (last: ${last}); the session was never cut`,
  );
  assertEquals(s.sink.accepted.length, 0);
  await s.end();
});
