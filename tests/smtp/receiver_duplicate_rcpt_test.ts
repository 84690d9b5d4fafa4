/**
 * A recipient given twice in one transaction (the same local part, the domain in any case) is
 * answered `250` again but handed to the sink once, with the first RCPT's DSN parameters, as
 * Postfix keeps one copy: the MX queue, the submission queue and the customer's local delivery
 * all sit behind this receiver, and each stored recipient is one delivery (a Maildir got the
 * message twice, with two Delivered-To:). A different local part is another mailbox (RFC 5321
 * §2.4: the local part may be case-sensitive).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startReady } from "./_session.ts";

Deno.test("SmtpReceiver: a repeated RCPT is answered 250 and stored once, with the first's NOTIFY/ORCPT", async () => {
  const s = await startReady({ options: { maxRecipients: 10 } });
  await s.client.send(
    "MAIL FROM:<s@x.test>\r\n" +
      "RCPT TO:<bob@d.test> NOTIFY=NEVER ORCPT=rfc822;first@d.test\r\n" +
      "RCPT TO:<bob@D.TEST> NOTIFY=SUCCESS ORCPT=rfc822;second@d.test\r\n" +
      "RCPT TO:<Bob@d.test>\r\n" +
      "RCPT TO:<bob@d.test>\r\n" +
      "DATA\r\n",
  );
  assertEquals((await s.client.replies(6)).map((r) => r.slice(0, 3)), [
    "250",
    "250",
    "250",
    "250",
    "250",
    "354",
  ]);
  await s.client.send("Subject: x\r\n\r\nhi\r\n.\r\n");
  assertEquals((await s.client.reply()).slice(0, 3), "250");
  const tx = s.sink.accepted[0];
  assertEquals(
    tx?.recipients.map((r) => [r.address, r.notify, r.orcpt]),
    [["bob@d.test", "NEVER", "rfc822;first@d.test"], ["Bob@d.test", undefined, undefined]],
  );
  // The next transaction starts afresh: the same recipient is taken again.
  await s.client.send("MAIL FROM:<s@x.test>\r\nRCPT TO:<bob@d.test>\r\nDATA\r\n");
  assertEquals((await s.client.replies(3)).map((r) => r.slice(0, 3)), ["250", "250", "354"]);
  await s.client.send("hi\r\n.\r\n");
  assertEquals((await s.client.reply()).slice(0, 3), "250");
  assertEquals(s.sink.accepted[1]?.recipients.map((r) => r.address), ["bob@d.test"]);
  await s.end();
});

Deno.test("SmtpReceiver: a quoted local part is the same recipient as its unquoted form (RFC 5321 §4.1.2)", async () => {
  const s = await startReady({ options: { maxRecipients: 10 } });
  await s.client.send(
    "MAIL FROM:<s@x.test>\r\n" +
      "RCPT TO:<bob@d.test>\r\n" +
      'RCPT TO:<"bob"@d.test>\r\n' +
      'RCPT TO:<"b\\ob"@D.test>\r\n' +
      'RCPT TO:<"a.b"@d.test>\r\n' +
      "RCPT TO:<a.b@d.test>\r\n" +
      'RCPT TO:<"a b"@d.test>\r\n' +
      'RCPT TO:<"a\\ b"@d.test>\r\n' +
      'RCPT TO:<"Bob"@d.test>\r\n' +
      "DATA\r\n",
  );
  const replies = await s.client.replies(10);
  assertEquals(replies.map((r) => r.slice(0, 3)), [...Array(9).fill("250"), "354"]);
  await s.client.send("hi\r\n.\r\n");
  assertEquals((await s.client.reply()).slice(0, 3), "250");
  // The first form of each is kept; "Bob" is another local part (case may matter, RFC 5321 §2.4).
  assertEquals(
    s.sink.accepted[0]?.recipients.map((r) => r.address),
    ["bob@d.test", '"a.b"@d.test', '"a b"@d.test', '"Bob"@d.test'],
  );
  await s.end();
});
