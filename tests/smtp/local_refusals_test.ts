// The customer's receiver with the local SMTP hand-off, driven as our provider's window drains
// (RSET, MAIL, RCPT, BDAT n LAST and the body per message, several messages in one write):
// each RCPT gets the local server's own reply upstream, in order, a message no local recipient
// took gets no 250 and its body never reaches the local server, and a lost local link answers
// 4xx for everything not settled (#13).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { windowMessage } from "../_helpers/window_message.ts";
import { withCustomer } from "./_customer.ts";

const code = (reply: string) => reply.slice(0, 3);

Deno.test("customer hand-off (#13): a refused pipelined RCPT goes upstream as the local reply, the message gets no 250", async () => {
  const rcptReply = (address: string) =>
    address === "m2@example.org"
      ? "550 5.1.1 No such user here"
      : address === "x3@example.org"
      ? "452 4.2.2 Mailbox full"
      : undefined;
  await withCustomer({ rcptReply }, async ({ client }, capture) => {
    await client.send(
      windowMessage(1) + windowMessage(2) +
        windowMessage(3, ["x3@example.org", "m3@example.org"]) + windowMessage(4),
    );
    const replies = await client.replies(17);
    assertEquals(replies.slice(0, 4).map(code), ["250", "250", "250", "250"]);
    // Message 2: the local refusal word for word, then the body is refused (nothing accepted).
    assertEquals(replies.slice(4, 8), [
      replies[0],
      replies[1],
      "550 5.1.1 No such user here",
      "554 5.5.1 No valid recipients",
    ]);
    // Message 3: one recipient refused, the other delivered.
    assertEquals(replies.slice(8, 13).map(code), ["250", "250", "452", "250", "250"]);
    assertEquals(replies[10], "452 4.2.2 Mailbox full");
    assertEquals(replies.slice(13).map(code), ["250", "250", "250", "250"]);
    // The local server never got message 2's body, and took the others on the same link.
    assertEquals(capture.messages.map((m) => m.recipients.join()), [
      "m1@example.org",
      "m3@example.org",
      "m4@example.org",
    ]);
    assertEquals(capture.connections, 1);
  });
});

Deno.test("customer hand-off (#13): every RCPT refused under BDAT: no 250, no body for the local server, the next message goes on", async () => {
  const rcptReply = (address: string) =>
    address.startsWith("x") ? "550 5.1.1 No such user here" : undefined;
  await withCustomer({ rcptReply }, async ({ client }, capture) => {
    await client.send(windowMessage(1, ["x1@example.org", "x2@example.org"]) + windowMessage(2));
    const replies = await client.replies(9);
    assertEquals(replies.slice(0, 5).map(code), ["250", "250", "550", "550", "554"]);
    assertEquals(replies.slice(5).map(code), ["250", "250", "250", "250"]);
    assertEquals(capture.messages.map((m) => m.recipients.join()), ["m2@example.org"]);
    // The local DATA sent ahead was refused (no recipient): RSET before the next MAIL.
    const sent = capture.commands.filter((c) => !c.startsWith("EHLO"));
    assertEquals(sent.slice(0, 6), [
      "MAIL FROM:<s@example.net>",
      "RCPT TO:<x1@example.org>",
      "RCPT TO:<x2@example.org>",
      "DATA",
      "RSET",
      "MAIL FROM:<s@example.net>",
    ]);
  });
});

Deno.test("customer hand-off (#13): every RCPT refused under DATA: 554 to DATA, exactly as without pipelining", async () => {
  const rcptReply = (address: string) =>
    address.startsWith("x") ? "550 5.1.1 No such user here" : undefined;
  await withCustomer({ rcptReply }, async ({ client }, capture) => {
    await client.send("MAIL FROM:<s@example.net>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n");
    assertEquals(await client.replies(3), [
      "250 2.1.0 Sender OK",
      "550 5.1.1 No such user here",
      "554 5.5.1 No valid recipients",
    ]);
    assertEquals(capture.messages.length, 0);
    assertEquals(code(await client.command("RSET")), "250");
    await client.send("MAIL FROM:<s@example.net>\r\nRCPT TO:<m@example.org>\r\nDATA\r\n");
    assertEquals((await client.replies(3)).map(code), ["250", "250", "354"]);
    await client.send("Subject: x\r\n\r\nbody\r\n.\r\n");
    assertEquals(code(await client.reply()), "250");
    assertEquals(capture.messages.map((m) => m.recipients.join()), ["m@example.org"]);
  });
});

Deno.test("customer hand-off (#13): the local link lost mid-pipeline: 4xx for everything unsettled, never a 250", async () => {
  await withCustomer({ closeAfterBodyBytes: 4 }, async ({ client }, capture) => {
    await client.send(windowMessage(1) + windowMessage(2) + windowMessage(3));
    const replies = await client.replies(12);
    for (const [i, r] of replies.entries()) {
      const isBody = i % 4 === 3;
      const isRcpt = i % 4 === 2;
      // A RCPT: taken (250) or 4xx; a body: 4xx, or 554 when no recipient was taken.
      if (isRcpt) assertEquals(r.startsWith("250") || r.startsWith("4"), true, r);
      if (isBody) assertEquals(r.startsWith("4") || r.startsWith("554"), true, r);
      if (isBody && r.startsWith("554")) assertEquals(code(replies[i - 1]!).startsWith("4"), true);
    }
    assertEquals(code(replies[3]!), "451");
    assertEquals(capture.acks.length, 0);
  });
});
