/**
 * One refused transaction costs at most one mistake (note8 B2-B4): what a pipelining client sent
 * behind a refused MAIL or a refused BDAT chunk before the refusal came back (its RCPTs, its
 * DATA or further chunks, the RSET after it) fails for want of a transaction (`503`) and is not
 * charged again. Before, a body refused whole cost a mistake per chunk (a body over 256 KiB to an
 * unknown local user ended a provider's drain with 421), the RCPT and DATA behind a refused MAIL
 * cost two more, and an MX client resetting after each refused BDAT LAST was cut at the 11th.
 * The tail stays bounded: its RCPTs and BDATs are attempts at a message, DATA ends it.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { reply } from "../../src/wire/reply.ts";
import { refusingSink } from "../_helpers/fake_sink.ts";
import { windowMessage } from "../_helpers/window_message.ts";
import { startReady, TEST_OPTIONS } from "./_session.ts";
import { withCustomer } from "./_customer.ts";

const NO_RCPT = "554 5.5.1 No valid recipients";
const MAIL_FIRST = "503 5.5.1 Send MAIL first";
const OK_MAIL = "250 2.1.0 Sender OK";
const UNKNOWN = "550 5.1.1 No such user";
const MAX_ERRORS = TEST_OPTIONS.maxErrors;

function unknownUsers() {
  return refusingSink((a) => a.startsWith("unknown@"), reply(550, "5.1.1", "No such user"));
}

/** `n` pipelined BDAT chunks of 10 octets, the last one LAST. */
function chunks(n: number): string {
  let out = "";
  for (let i = 1; i <= n; i++) out += `BDAT 10${i === n ? " LAST" : ""}\r\n0123456789`;
  return out;
}

/** A message to a known recipient; its final reply. */
async function deliver(s: Awaited<ReturnType<typeof startReady>>): Promise<string> {
  await s.client.send(`MAIL FROM:<a@b.test>\r\nRCPT TO:<k@d.test>\r\n${chunks(1)}`);
  return (await s.client.replies(3))[2] ?? "";
}

Deno.test("receiver: a body refused whole for want of recipients costs nothing per pipelined chunk: more chunks than the error budget, then the next message is taken (note8 B2)", async () => {
  const s = await startReady({ sink: unknownUsers() });
  const n = MAX_ERRORS + 3;
  await s.client.send(`MAIL FROM:<a@b.test>\r\nRCPT TO:<unknown@d.test>\r\n${chunks(n)}`);
  const got = await s.client.replies(2 + n);
  assertEquals(got, [OK_MAIL, UNKNOWN, NO_RCPT, ...Array(n - 1).fill(MAIL_FIRST)]);
  assertEquals((await deliver(s)).slice(0, 3), "250");
  await s.end();
});

Deno.test("receiver: a refused MAIL costs one mistake, not three with the RCPT and DATA behind it: maxErrors such transactions pass, the next MAIL ends the session (note8 B3, N and N+1)", async () => {
  const s = await startReady();
  const refusedTx = "MAIL FROM:<a@b.test> SIZE=999999\r\nRCPT TO:<k@d.test>\r\nDATA\r\n";
  for (let i = 1; i <= MAX_ERRORS; i++) {
    await s.client.send(refusedTx);
    const [mail, rcpt, data] = await s.client.replies(3);
    assertEquals(mail?.slice(0, 3), "552", `transaction ${i}`);
    assertEquals([rcpt, data], [MAIL_FIRST, MAIL_FIRST]);
  }
  await s.client.send(refusedTx);
  const [mail, bye] = await s.client.replies(2);
  assertEquals(mail?.slice(0, 3), "552");
  assertEquals(bye?.slice(0, 9), "421 4.7.0");
  await s.end();
});

Deno.test("receiver (MX limits): the RSET after each refused BDAT LAST is no idle command: more refused messages than the idle budget pass (note8 B4)", async () => {
  const maxIdleCommands = 3;
  const s = await startReady({
    sink: unknownUsers(),
    options: { maxIdleCommands, maxAttempts: 100 },
  });
  for (let i = 1; i <= 2 * maxIdleCommands + 1; i++) {
    await s.client.send(`MAIL FROM:<a@b.test>\r\nRCPT TO:<unknown@d.test>\r\n${chunks(1)}RSET\r\n`);
    assertEquals(await s.client.replies(4), [OK_MAIL, UNKNOWN, NO_RCPT, "250 2.0.0 Reset OK"]);
  }
  assertEquals((await deliver(s)).slice(0, 3), "250");
  // A bare RSET outside such a tail is still idle.
  for (let i = 1; i <= maxIdleCommands; i++) {
    assertEquals(await s.client.command("RSET"), "250 2.0.0 Reset OK");
  }
  assertEquals((await s.client.command("RSET")).slice(0, 9), "421 4.7.0");
  await s.end();
});

Deno.test("receiver: the tail is bounded: DATA ends it (a second DATA is a mistake again), and its BDAT chunks are attempts (MX)", async (t) => {
  await t.step("DATA", async () => {
    const s = await startReady({ options: { maxErrors: 1 } });
    await s.client.send("MAIL FROM:<a@b.test> SIZE=999999\r\nDATA\r\nDATA\r\n");
    const got = await s.client.replies(4);
    assertEquals(got[0]?.slice(0, 3), "552");
    assertEquals(got.slice(1, 3), [MAIL_FIRST, MAIL_FIRST]);
    assertEquals(got[3]?.slice(0, 9), "421 4.7.0");
    await s.end();
  });
  await t.step("BDAT chunks", async () => {
    // MAIL, then three chunks behind the refused first one (RCPTs have a count of their own)
    const maxAttempts = 4;
    const s = await startReady({ sink: unknownUsers(), options: { maxAttempts } });
    await s.client.send(`MAIL FROM:<a@b.test>\r\nRCPT TO:<unknown@d.test>\r\n${chunks(5)}`);
    const got = await s.client.replies(7);
    assertEquals(got.slice(0, 6), [OK_MAIL, UNKNOWN, NO_RCPT, MAIL_FIRST, MAIL_FIRST, MAIL_FIRST]);
    assertEquals(got[6]?.slice(0, 9), "421 4.7.0");
    await s.end();
  });
});

Deno.test("customer hand-off: a multi-chunk body to a user the local server refuses gets 503 per chunk, and the drain's next message is delivered, not cut by 421 (note8 B2)", async () => {
  const rcptReply = (a: string) =>
    a === "gone@example.org" ? "550 5.1.1 No such user here" : undefined;
  await withCustomer({ rcptReply }, async ({ client }, capture) => {
    const n = MAX_ERRORS + 3;
    const refused = "RSET\r\nMAIL FROM:<s@example.net>\r\nRCPT TO:<gone@example.org>\r\n" +
      chunks(n);
    await client.send(refused + windowMessage(2));
    const replies = await client.replies(3 + n + 4);
    assertEquals(replies.slice(2, 4 + n - 1), [
      "550 5.1.1 No such user here",
      NO_RCPT,
      ...Array(n - 1).fill(MAIL_FIRST),
    ]);
    assertEquals(replies.slice(3 + n).map((r) => r.slice(0, 3)), ["250", "250", "250", "250"]);
    assertEquals(capture.messages.map((m) => m.recipients.join()), ["m2@example.org"]);
  });
});
