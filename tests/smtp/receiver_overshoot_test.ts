/**
 * Recipients past `maxRecipients` get `452 4.5.3` (RFC 5321 §4.5.3.1.10: the client sends them
 * in a later transaction) and are no protocol error: as one, the (maxErrors + 1)th of them
 * ended the session with `421` before DATA, and the message of the ones taken never came. Here
 * with the options of fetch's receiver (src/odmr/customer.ts: no attempts budget), where a
 * provider's transaction to more than 1000 recipients was cut on every retry; the MX and
 * submission ports are in tests/e2e/too_many_recipients_test.ts.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startReady } from "./_session.ts";

Deno.test("receiver without an attempts budget: 3 taken, 10 more refused 452 4.5.3 (over maxErrors 3), DATA delivers to the 3 and the session goes on", async () => {
  const s = await startReady(); // maxRecipients 3, maxErrors 3 (TEST_OPTIONS)
  const rcpts = Array.from({ length: 13 }, (_, i) => `RCPT TO:<r${i}@d.test>\r\n`).join("");
  await s.client.send(`MAIL FROM:<a@b.test>\r\n${rcpts}DATA\r\n`);
  assertEquals(await s.client.replies(15), [
    "250 2.1.0 Sender OK",
    ...Array(3).fill("250 2.1.5 OK"),
    ...Array(10).fill("452 4.5.3 Too many recipients"),
    "354 Start mail input; end with <CRLF>.<CRLF>",
  ]);
  assertEquals((await s.client.command("Subject: x\r\n\r\nhi\r\n.")).slice(0, 4), "250 ");
  assertEquals(s.sink.transactions[0]?.recipients.length, 3);
  // Still a mistake: an unknown command is counted as before.
  assertEquals(await s.client.command("NOOP"), "250 2.0.0 OK");
  await s.end();
});
