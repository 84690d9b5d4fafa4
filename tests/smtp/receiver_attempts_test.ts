/**
 * Attempts at a message without one ever being accepted are bounded (`maxAttempts`): each MAIL
 * and each RCPT counts; past the limit the command gets `421 4.7.0` instead of its reply and the
 * session ends. RSET inside a transaction is no idle command, so before this a client sending
 * MAIL and RSET (or RCPTs), each just before the idle timeout, held its session forever.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { reply } from "../../src/wire/reply.ts";
import { type FakeSink, refusingSink } from "../_helpers/fake_sink.ts";
import { startReady } from "./_session.ts";
import { MAX_REFUSED_RECIPIENTS } from "../../src/smtp/session_budget.ts";

const MAX_ATTEMPTS = 4;
const TOO_MANY = "421 4.7.0 Too many transactions without a message, closing connection";
const TOO_MANY_RCPT = "421 4.7.0 Too many recipients without a message, closing connection";

function foreignRefused(): FakeSink {
  return refusingSink((a) => a.endsWith("@foreign.test"), reply(550, "5.7.1", "Relaying denied"));
}

Deno.test("receiver: MAIL/RSET forever is cut: the 4th MAIL (N) is taken, the 5th (N+1) gets 421 4.7.0 and the session ends", async () => {
  const s = await startReady({ options: { maxAttempts: MAX_ATTEMPTS } });
  for (let i = 1; i <= MAX_ATTEMPTS; i++) {
    assertEquals(
      await s.client.command("MAIL FROM:<a@b.test>"),
      "250 2.1.0 Sender OK",
      `MAIL ${i}`,
    );
    assertEquals(await s.client.command("RSET"), "250 2.0.0 Reset OK");
  }
  assertEquals(await s.client.command("MAIL FROM:<a@b.test>"), TOO_MANY);
  assertEquals((await s.done).reason, "tooManyErrors");
  assertEquals(s.sink.transactions.length, MAX_ATTEMPTS, "the last MAIL opened nothing");
  await s.end();
});

Deno.test("receiver: every RCPT, taken or refused, is an attempt of its own count (maxAttempts + MAX_REFUSED_RECIPIENTS): the one past it gets 421 4.7.0 (too many recipients) instead of its reply", async () => {
  const s = await startReady({ sink: foreignRefused(), options: { maxAttempts: MAX_ATTEMPTS } });
  assertEquals(await s.client.command("MAIL FROM:<a@b.test>"), "250 2.1.0 Sender OK");
  assertEquals(await s.client.command("RCPT TO:<a@local.test>"), "250 2.1.5 OK");
  for (let i = 2; i <= MAX_ATTEMPTS + MAX_REFUSED_RECIPIENTS; i++) {
    assertEquals(
      await s.client.command(`RCPT TO:<x${i}@foreign.test>`),
      "550 5.7.1 Relaying denied",
    );
  }
  assertEquals(await s.client.command("RCPT TO:<b@local.test>"), TOO_MANY_RCPT);
  assertEquals((await s.done).reason, "tooManyErrors");
  assertEquals(s.sink.transactions[0]?.recipients.length, 1, "the last RCPT was not run");
  await s.end();
});

Deno.test("receiver: a transaction whose recipients are mostly refused (150 of them) still carries its message: refused RCPTs do not spend the MAIL budget (review of 57c5f59)", async () => {
  const s = await startReady({ sink: foreignRefused(), options: { maxAttempts: MAX_ATTEMPTS } });
  assertEquals(await s.client.command("MAIL FROM:<a@b.test>"), "250 2.1.0 Sender OK");
  assertEquals(await s.client.command("RCPT TO:<a@local.test>"), "250 2.1.5 OK");
  for (let i = 1; i <= 150; i++) {
    assertEquals(
      await s.client.command(`RCPT TO:<x${i}@foreign.test>`),
      "550 5.7.1 Relaying denied",
    );
  }
  assertEquals(await s.client.command("RCPT TO:<b@local.test>"), "250 2.1.5 OK");
  assertEquals((await s.client.command("DATA")).slice(0, 3), "354");
  assertEquals((await s.client.command("Subject: x\r\n\r\nhi\r\n.")).slice(0, 3), "250");
  assertEquals(s.sink.transactions[0]?.recipients.length, 2);
  await s.end();
});

Deno.test("receiver: an accepted message restarts the count of attempts", async () => {
  const s = await startReady({ options: { maxAttempts: MAX_ATTEMPTS } });
  // MAIL/RSET, then the message's MAIL and RCPT: the limit exactly.
  for (let i = 1; i <= MAX_ATTEMPTS - 2; i++) {
    assertEquals((await s.client.command("MAIL FROM:<a@b.test>")).slice(0, 3), "250");
    assertEquals((await s.client.command("RSET")).slice(0, 3), "250");
  }
  assertEquals((await s.client.command("MAIL FROM:<a@b.test>")).slice(0, 3), "250");
  assertEquals((await s.client.command("RCPT TO:<a@local.test>")).slice(0, 3), "250");
  assertEquals((await s.client.command("DATA")).slice(0, 3), "354");
  assertEquals((await s.client.command("Subject: x\r\n\r\nhi\r\n.")).slice(0, 3), "250");
  for (let i = 1; i <= MAX_ATTEMPTS; i++) {
    assertEquals((await s.client.command("MAIL FROM:<a@b.test>")).slice(0, 3), "250");
    assertEquals((await s.client.command("RSET")).slice(0, 3), "250");
  }
  assertEquals(await s.client.command("MAIL FROM:<a@b.test>"), TOO_MANY);
  await s.end();
});

Deno.test("receiver: without maxAttempts (fetch's receiver, whose provider is trusted) MAIL/RSET is not cut", async () => {
  const s = await startReady();
  for (let i = 0; i < 3 * MAX_ATTEMPTS; i++) {
    assertEquals((await s.client.command("MAIL FROM:<a@b.test>")).slice(0, 3), "250");
    assertEquals((await s.client.command("RSET")).slice(0, 3), "250");
  }
  assertEquals((await s.client.command("QUIT")).slice(0, 3), "221");
  await s.end();
});
