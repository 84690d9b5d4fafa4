/**
 * The Received field of a message that came with SMTPUTF8 names the protocol as RFC 6531 §4.3
 * registers it (UTF8SMTP, UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA), as Postfix writes it; without
 * SMTPUTF8 the RFC 3848 names stay.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { bytes, startReady } from "./_session.ts";

async function receivedProtocol(mailParams: string): Promise<string | undefined> {
  const s = await startReady({ options: { addTraceHeader: true } });
  await s.client.send(`MAIL FROM:<a@b.test>${mailParams}\r\nRCPT TO:<x@d.test>\r\nDATA\r\n`);
  await s.client.replies(3);
  await s.client.send(bytes("Subject: x\r\n\r\nhi\r\n.\r\n"));
  const reply = await s.client.reply();
  const text = new TextDecoder().decode(s.sink.transactions[0]?.body());
  await s.end();
  assertEquals(reply.slice(0, 3), "250");
  return / with (\S+) id /.exec(text)?.[1];
}

Deno.test("a message with SMTPUTF8 is received 'with UTF8SMTP' (RFC 6531 §4.3)", async () => {
  assertEquals(await receivedProtocol(" SMTPUTF8"), "UTF8SMTP");
  assertEquals(await receivedProtocol(" SMTPUTF8 BODY=8BITMIME"), "UTF8SMTP");
  assertEquals(await receivedProtocol(""), "ESMTP");
});
