// DATA or BDAT refused for want of recipients is not a mistake of the client's: a pipelining
// client sends it behind RCPTs whose replies it has not read yet (RFC 2920 §3.1). Counted in the
// error budget, a session of more messages refused whole than maxErrors ended with 421 (a
// customer whose local MTA refused 11 unknown users ended its provider's drain) (#13).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { reply } from "../../src/wire/reply.ts";
import { type FakeSink, refusingSink } from "../_helpers/fake_sink.ts";
import { startReady, TEST_OPTIONS } from "./_session.ts";

const REFUSED = "554 5.5.1 No valid recipients";
/** More messages refused whole than the error budget allows mistakes (TEST_OPTIONS: 3). */
const MESSAGES = TEST_OPTIONS.maxErrors + 2;

function unknownUsers(): FakeSink {
  return refusingSink((a) => a.startsWith("unknown@"), reply(550, "5.1.1", "No such user"));
}

Deno.test("receiver: pipelined DATA refused for want of recipients spends no error budget (#13)", async () => {
  const s = await startReady({ sink: unknownUsers() });
  for (let i = 0; i < MESSAGES; i++) {
    await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<unknown@d.test>\r\nDATA\r\n");
    const [, rcpt, data] = await s.client.replies(3);
    assertEquals(rcpt, "550 5.1.1 No such user");
    assertEquals(data, REFUSED);
    // RFC 2920 §3.1: after a refused DATA the client resets.
    assertEquals(await s.client.command("RSET"), "250 2.0.0 Reset OK");
  }
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<known@d.test>\r\nDATA\r\n");
  assertEquals((await s.client.replies(3))[2]?.slice(0, 3), "354");
  assertEquals((await s.client.command("Subject: x\r\n\r\nhi\r\n.")).slice(0, 3), "250");
  await s.end();
});

Deno.test("receiver: pipelined BDAT LAST refused for want of recipients spends no error budget and ends the transaction (#13)", async () => {
  const s = await startReady({ sink: unknownUsers() });
  const body = "Subject: x\r\n\r\nhi\r\n";
  for (let i = 0; i < MESSAGES; i++) {
    await s.client.send(
      `MAIL FROM:<a${i}@b.test>\r\nRCPT TO:<unknown@d.test>\r\nBDAT ${body.length} LAST\r\n${body}`,
    );
    const [mail, rcpt, bdat] = await s.client.replies(3);
    // Each MAIL is taken: the previous refusal left no transaction open (no RSET between).
    assertEquals(mail, "250 2.1.0 Sender OK");
    assertEquals(rcpt, "550 5.1.1 No such user");
    assertEquals(bdat, REFUSED);
  }
  await s.client.send(
    `MAIL FROM:<a@b.test>\r\nRCPT TO:<known@d.test>\r\nBDAT ${body.length} LAST\r\n${body}`,
  );
  assertEquals((await s.client.replies(3))[2]?.slice(0, 3), "250");
  await s.end();
});

Deno.test("receiver: DATA with no MAIL at all still spends the error budget (#13)", async () => {
  const s = await startReady();
  for (let i = 0; i < TEST_OPTIONS.maxErrors; i++) {
    assertEquals((await s.client.command("DATA")).slice(0, 3), "503");
  }
  assertEquals((await s.client.command("DATA")).slice(0, 3), "503");
  assertEquals((await s.client.reply()).slice(0, 3), "421");
  await s.end();
});

Deno.test("receiver: DATA with no recipient repeated in one transaction ends with 421 once the idle budget is spent (#13)", async () => {
  // A free 554 each time would let an MX client loop MAIL/DATA forever without a mistake.
  const maxIdleCommands = 4;
  const s = await startReady({ options: { ...TEST_OPTIONS, maxIdleCommands } });
  assertEquals((await s.client.command("MAIL FROM:<a@b.test>")).slice(0, 3), "250");
  for (let i = 0; i < maxIdleCommands; i++) {
    assertEquals(await s.client.command("DATA"), REFUSED);
  }
  await s.client.send("DATA\r\n");
  const [last, bye] = await s.client.replies(2);
  assertEquals(last, REFUSED);
  assertEquals(bye?.slice(0, 9), "421 4.7.0");
  await s.end();
});

Deno.test("receiver: MAIL then BDAT LAST with no recipient, repeated, spends no idle budget and ends with 421 once the attempts budget is spent (#13)", async () => {
  // The BDAT ends its transaction: each round needs a MAIL, which the attempts budget counts.
  const maxAttempts = 4;
  const s = await startReady({ options: { ...TEST_OPTIONS, maxIdleCommands: 1, maxAttempts } });
  for (let i = 0; i < maxAttempts; i++) {
    await s.client.send("MAIL FROM:<a@b.test>\r\nBDAT 2 LAST\r\nhi");
    assertEquals(await s.client.replies(2), ["250 2.1.0 Sender OK", REFUSED]);
  }
  await s.client.send("MAIL FROM:<a@b.test>\r\nBDAT 2 LAST\r\nhi");
  assertEquals((await s.client.reply()).slice(0, 9), "421 4.7.0");
  await s.end();
});
