/**
 * A client cannot hold a session forever with transactions that never carry a message: on the
 * MX and the submission port 100 + max_recipients MAIL and RCPT commands since the last accepted
 * message are answered and the next one gets `421 4.7.0`; on the ODMR port an ATRN that does
 * not reverse the session (453 with an empty queue) counts as a command without progress, so the
 * 11th since AUTH gets `421 4.7.0`. Real `serve`; RSET inside a transaction is no idle command,
 * so before this MAIL/RSET (or ATRN) every `smtp.timeout - ε` held a slot forever.
 */
import { match as assertMatch, ok as assert } from "node:assert/strict";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { MAX_IDLE_COMMANDS, maxAttemptsFor } from "../../src/smtp/session_budget.ts";
import { cram, greeted, type RawClient } from "./_raw.ts";
import { withServe } from "./_serve.ts";

const PASSWORD = "alice-pw";
const TOO_MANY = /^421 4\.7\.0 Too many transactions without a message/;
/** smtp.max_recipients and submission.max_recipients here. */
const MAX_RECIPIENTS = 20;
/** MAIL and RCPT commands allowed between accepted messages: 120. */
const MAX_ATTEMPTS = maxAttemptsFor(MAX_RECIPIENTS);

/** MAIL/RSET up to the limit (N, all taken), then one more MAIL (N+1): 421 and close. */
async function mailRsetUntilCut(c: RawClient): Promise<void> {
  for (let i = 1; i <= MAX_ATTEMPTS; i++) {
    assertMatch(await c.command("MAIL FROM:<s@example.org>"), /^250 /, `MAIL ${i}`);
    assertMatch(await c.command("RSET"), /^250 /, `RSET ${i}`);
  }
  assertMatch(await c.command("MAIL FROM:<s@example.org>"), TOO_MANY);
  assert(await c.waitClosed(2_000), "closed after the 421");
}

function withServer(fn: (server: ServerProcess) => Promise<void>): Promise<void> {
  return withServe(
    {
      smtp: { timeout: "10s", max_recipients: MAX_RECIPIENTS },
      submission: { listen: ["127.0.0.1:0"], max_recipients: MAX_RECIPIENTS },
    },
    fn,
    {
      users: [
        { name: "alice", domains: ["example.org"], password: PASSWORD },
        // Never gets mail here: its ATRN always finds nothing (453).
        { name: "bob", domains: ["bob.example"], password: PASSWORD },
      ],
    },
  );
}

Deno.test("MAIL/RSET without a message: the 120th MAIL (100 + max_recipients) is taken, the 121st gets 421 4.7.0 (MX, submission); the 11th ATRN answered 453 gets 421 4.7.0 (ODMR)", async (t) => {
  await withServer(async (server) => {
    await t.step("MX", async () => {
      using c = await greeted(server.smtp[0]!.port, undefined, "client.test");
      await mailRsetUntilCut(c);
    });
    await t.step("MX: an accepted message restarts the count", async () => {
      using c = await greeted(server.smtp[0]!.port, undefined, "client.test");
      // MAIL/RSET, then a message to MAX_RECIPIENTS recipients: the limit exactly.
      for (let i = 1; i <= MAX_ATTEMPTS - 1 - MAX_RECIPIENTS; i++) {
        assertMatch(await c.command("MAIL FROM:<s@remote.test>"), /^250 /);
        assertMatch(await c.command("RSET"), /^250 /);
      }
      assertMatch(await c.command("MAIL FROM:<s@remote.test>"), /^250 /);
      for (let i = 1; i <= MAX_RECIPIENTS; i++) {
        assertMatch(await c.command(`RCPT TO:<a${i}@example.org>`), /^250 /);
      }
      assertMatch(await c.command("DATA"), /^354 /);
      assertMatch(await c.command("Subject: x\r\n\r\nbody\r\n."), /^250 /);
      await mailRsetUntilCut(c);
    });
    await t.step("submission, after AUTH", async () => {
      const port = server.listening.find((e) => e.proto === "submission")!.port;
      using c = await greeted(port, undefined, "client.test");
      assertMatch((await cram(c, "alice", PASSWORD)).reply, /^235 /);
      await mailRsetUntilCut(c);
    });
    await t.step("ODMR: ATRN with nothing queued, again and again", async () => {
      using c = await greeted(server.odmr[0]!.port);
      assertMatch((await cram(c, "bob", PASSWORD)).reply, /^235 /);
      for (let i = 1; i <= MAX_IDLE_COMMANDS; i++) {
        assertMatch(await c.command("ATRN bob.example"), /^453 /, `ATRN ${i}`);
      }
      assertMatch(await c.command("ATRN bob.example"), /^421 4\.7\.0 /);
      assert(await c.waitClosed(2_000), "closed after the 421");
    });
  });
});
