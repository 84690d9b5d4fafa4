// The customer's receiver with the local SMTP hand-off, driven the way our provider drains
// (RFC 2920: the body's "." and the next MAIL/RCPT/DATA in one write): "." and the next
// envelope go to the local server without waiting for its reply to ".", the replies upstream
// stay in order, and each message's reply upstream is the local server's own for it (#13).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import type { CaptureOptions, CaptureServer } from "../_helpers/capture_smtp.ts";
import { type CustomerSession, withCustomer as withLocalCustomer } from "./_customer.ts";
import { windowMessage } from "../_helpers/window_message.ts";

/** Long enough that a customer waiting for the reply to "." is seen doing so. */
const HOLD_MS = 1_500;

const code = (reply: string) => reply.slice(0, 3);

/** The reply codes of `drainThree` when the local server takes all three messages. */
const EVERY_ONE_TAKEN = [
  ["250", "250", "354"],
  ["250", "250", "250", "354"],
  ["250", "250", "250", "354"],
  ["250", "221"],
];

function withCustomer(
  opts: CaptureOptions,
  fn: (session: CustomerSession, capture: CaptureServer) => Promise<void>,
): Promise<void> {
  return withLocalCustomer({ holdDotReplyMs: HOLD_MS, ...opts }, fn);
}

/** Three messages, each "." sent with the next envelope; the replies of each group. */
async function drainThree(client: CustomerSession["client"]) {
  const envelope = (n: number) =>
    `MAIL FROM:<s@example.net>\r\nRCPT TO:<m${n}@example.org>\r\nDATA\r\n`;
  const body = (n: number) => `Subject: ${n}\r\n\r\nbody ${n}\r\n.\r\n`;
  await client.send(envelope(1));
  const groups: string[][] = [(await client.replies(3)).map(code)];
  await client.send(body(1) + envelope(2));
  groups.push((await client.replies(4)).map(code));
  await client.send(body(2) + envelope(3));
  groups.push((await client.replies(4)).map(code));
  await client.send(body(3) + "QUIT\r\n");
  groups.push((await client.replies(2)).map(code));
  return groups;
}

Deno.test("customer hand-off (#13): '.' and the next envelope reach the local server in one round trip", async () => {
  await withCustomer({}, async ({ client }, capture) => {
    assertEquals(await drainThree(client), EVERY_ONE_TAKEN);
    // The local server held each reply to "." until the next command came: the customer sent
    // it without waiting (the last message's "." has no next command: it waited, once).
    assertEquals(capture.dotRepliesTimedOut, 1);
    assertEquals(capture.messages.map((m) => m.recipients), [
      ["m1@example.org"],
      ["m2@example.org"],
      ["m3@example.org"],
    ]);
    assertEquals(capture.connections, 1);
  });
});

Deno.test("customer hand-off (#13): with SIZE=, the next envelope goes in the room after a small body, or joined to it when the body left no room", async (t) => {
  // A body announced with SIZE= gets a buffer of about its size plus room for the next MAIL,
  // RCPT and DATA. A body bigger than announced fills that room: the envelope is joined to it.
  const rows = [
    { name: "envelope in the room", text: "body", size: (b: string) => b.length },
    { name: "no room left", text: "x".repeat(540), size: () => 1 },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      await withCustomer({}, async ({ client }, capture) => {
        const body = (n: number) => `Subject: ${n}\r\n\r\n${row.text} ${n}\r\n`;
        const envelope = (n: number) =>
          `MAIL FROM:<s@example.net> SIZE=${row.size(body(n))}\r\n` +
          `RCPT TO:<m${n}@example.org>\r\nDATA\r\n`;
        await client.send(envelope(1));
        const groups: string[][] = [(await client.replies(3)).map(code)];
        await client.send(`${body(1)}.\r\n${envelope(2)}`);
        groups.push((await client.replies(4)).map(code));
        await client.send(`${body(2)}.\r\n${envelope(3)}`);
        groups.push((await client.replies(4)).map(code));
        await client.send(`${body(3)}.\r\nQUIT\r\n`);
        groups.push((await client.replies(2)).map(code));
        assertEquals(groups, EVERY_ONE_TAKEN);
        assertEquals(capture.dotRepliesTimedOut, 1);
        const text = new TextDecoder();
        assertEquals(
          capture.messages.map((m) => [m.recipients.join(), text.decode(m.body)]),
          [1, 2, 3].map((n) => [`m${n}@example.org`, body(n)]),
        );
      });
    });
  }
});

Deno.test("customer hand-off (#13): each body goes out byte-exact when the last one's buffer is used again, shorter or longer", async () => {
  // LocalConnection.buffer: a body goes into the buffer of the body before it once the socket
  // is done with it; nothing of the longer body before may go out with a shorter one.
  await withCustomer({}, async ({ client }, capture) => {
    const lines = (c: string, n: number) => `${c.repeat(70)}\r\n`.repeat(n);
    const texts = [lines("x", 10), "short", lines("y", 4), lines("z", 30)];
    const body = (n: number) => `Subject: ${n}\r\n\r\n${texts[n - 1]}\r\n..dot ${n}\r\n`;
    const envelope = (n: number) =>
      `MAIL FROM:<s@example.net> SIZE=${body(n).length}\r\n` +
      `RCPT TO:<m${n}@example.org>\r\nDATA\r\n`;
    await client.send(envelope(1));
    const groups: string[][] = [(await client.replies(3)).map(code)];
    for (const n of [1, 2, 3]) {
      await client.send(`${body(n)}.\r\n${envelope(n + 1)}`);
      groups.push((await client.replies(4)).map(code));
    }
    await client.send(`${body(4)}.\r\nQUIT\r\n`);
    groups.push((await client.replies(2)).map(code));
    assertEquals(groups, [
      EVERY_ONE_TAKEN[0],
      ...EVERY_ONE_TAKEN.slice(1, 3),
      EVERY_ONE_TAKEN[2],
      EVERY_ONE_TAKEN[3],
    ]);
    const text = new TextDecoder();
    assertEquals(
      capture.messages.map((m) => text.decode(m.body)),
      // The capture server un-stuffs: "..dot" arrives as ".dot".
      [1, 2, 3, 4].map((n) => body(n).replace("..dot", ".dot")),
    );
  });
});

Deno.test("customer hand-off (#13): a local 4xx or 5xx after '.' answers that message only, in order", async () => {
  const dataReply = (address: string) =>
    address === "m1@example.org"
      ? "451 4.3.0 Try again later"
      : address === "m2@example.org"
      ? "554 5.6.0 Content refused"
      : undefined;
  await withCustomer({ dataReply }, async ({ client }, capture) => {
    assertEquals(await drainThree(client), [
      ["250", "250", "354"],
      ["451", "250", "250", "354"],
      ["554", "250", "250", "354"],
      ["250", "221"],
    ]);
    assertEquals(capture.messages.map((m) => m.recipients.join()), [
      "m1@example.org",
      "m2@example.org",
      "m3@example.org",
    ]);
  });
});

Deno.test("customer hand-off (#13): a local 421 after '.' defers that message and the pipelined next one", async () => {
  const dataReply = (address: string) =>
    address === "m1@example.org" ? "421 4.3.2 Shutting down" : undefined;
  await withCustomer({ dataReply }, async ({ client }, capture) => {
    const envelope = (n: number) =>
      `MAIL FROM:<s@example.net>\r\nRCPT TO:<m${n}@example.org>\r\nDATA\r\n`;
    await client.send(envelope(1));
    assertEquals((await client.replies(3)).map(code), ["250", "250", "354"]);
    await client.send(`Subject: 1\r\n\r\nbody\r\n.\r\n${envelope(2)}`);
    // Message 1: the local server went away (451, the provider keeps it); message 2's RCPT
    // met the lost link (451), so its DATA is refused: nothing is taken without a 250.
    assertEquals((await client.replies(4)).map(code), ["451", "250", "451", "554"]);
    // As our provider does after a refused DATA: RSET. The next message opens a new local
    // connection.
    await client.send(`RSET\r\n${envelope(3)}`);
    assertEquals((await client.replies(4)).map(code), ["250", "250", "250", "354"]);
    await client.send("Subject: 3\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    assertEquals((await client.replies(2)).map(code), ["250", "221"]);
    assertEquals(capture.messages.map((m) => m.recipients.join()), [
      "m1@example.org",
      "m3@example.org",
    ]);
    assertEquals(capture.connections, 2);
  });
});

Deno.test("customer hand-off (#13): a local server without PIPELINING gets '.' and waits for its reply", async () => {
  await withCustomer({ pipelining: false, holdDotReplyMs: 200 }, async ({ client }, capture) => {
    assertEquals(await drainThree(client), EVERY_ONE_TAKEN);
    // RFC 2920 is the local server's to offer: each "." waited for its reply alone.
    assertEquals(capture.dotRepliesTimedOut, 3);
    assertEquals(capture.messages.length, 3);
  });
});

Deno.test("customer hand-off (#13): BDAT LAST then RSET/MAIL, as the provider's window sends them", async () => {
  const dataReply = (address: string) =>
    address === "m2@example.org" ? "554 5.6.0 Content refused" : undefined;
  await withCustomer({ dataReply }, async ({ client }, capture) => {
    await client.send(windowMessage(1) + windowMessage(2) + windowMessage(3));
    // RSET, MAIL, RCPT, BDAT for each message, in order; message 2's is the local refusal.
    assertEquals((await client.replies(12)).map(code), [
      ...["250", "250", "250", "250"],
      ...["250", "250", "250", "554"],
      ...["250", "250", "250", "250"],
    ]);
    // Each "." went out with the next RSET/MAIL/RCPT/DATA; only the last one waited alone.
    assertEquals(capture.dotRepliesTimedOut, 1);
    assertEquals(capture.messages.map((m) => m.recipients.join()), [
      "m1@example.org",
      "m2@example.org",
      "m3@example.org",
    ]);
    assertEquals(capture.connections, 1);
    await client.send("QUIT\r\n");
    assertEquals(code(await client.reply()), "221");
  });
});

Deno.test("customer hand-off (#13): messages already received in chunks of their own still share a local round trip", async () => {
  await withCustomer({}, async ({ client }, capture) => {
    // The provider writes each message of its window on its own: all three are received
    // (queued in the Conn) before the customer has read the first one's end.
    await Promise.all([1, 2, 3].map((n) => client.send(windowMessage(n))));
    assertEquals((await client.replies(12)).map(code), Array(12).fill("250"));
    // Before, a '.' at the end of a socket chunk was sent alone and waited for its reply.
    assertEquals(capture.dotRepliesTimedOut, 1);
    assertEquals(capture.messages.length, 3);
    await client.send("QUIT\r\n");
    assertEquals(code(await client.reply()), "221");
  });
});
