/**
 * A BDAT chunk the receiver refuses before its octets (no MAIL, no recipient, a bad argument) is
 * read and dropped to stay in step (RFC 3030 §3), up to `maxMessageBytes`: such a chunk may still
 * be a sender's whole message, refused for its envelope. One larger than that belongs to no
 * message that could be taken, and its count may have 15 digits: it is not read, the client gets
 * `552 5.3.4` and the session ends (review wt16-r1 C: skipping it was the way to hold a slot).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startReady, TEST_OPTIONS } from "./_session.ts";

const MAX = TEST_OPTIONS.maxMessageBytes;

const CASES: { name: string; before: string[]; args: string; refusal: string }[] = [
  { name: "BDAT before MAIL", before: [], args: "", refusal: "503 5.5.1 Send MAIL first" },
  {
    name: "BDAT with no recipient",
    before: ["MAIL FROM:<a@b.test>"],
    args: "",
    refusal: "554 5.5.1 No valid recipients",
  },
  {
    name: "BDAT with a bad argument",
    before: ["MAIL FROM:<a@b.test>", "RCPT TO:<x@d.test>"],
    args: " NOW",
    refusal: "501 5.5.4 Syntax: BDAT octets [LAST]",
  },
];

Deno.test("receiver: a refused BDAT chunk of maxMessageBytes is read and dropped, and the session goes on", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, async () => {
      const s = await startReady();
      try {
        for (const line of c.before) {
          assertEquals((await s.client.command(line)).slice(0, 4), "250 ");
        }
        await s.client.send(`BDAT ${MAX}${c.args}\r\n${"y".repeat(MAX)}NOOP\r\n`);
        assertEquals(await s.client.replies(2), [c.refusal, "250 2.0.0 OK"]);
        assertEquals(s.sink.accepted.length, 0);
      } finally {
        await s.end();
      }
    });
  }
});

Deno.test("receiver: a refused BDAT chunk over maxMessageBytes is not read: 552 5.3.4 and the session ends", async (t) => {
  for (const c of CASES) {
    for (const octets of [MAX + 1, 999_999_999_999_999]) {
      await t.step(`${c.name}, ${octets} octets`, async () => {
        const s = await startReady();
        try {
          for (const line of c.before) {
            assertEquals((await s.client.command(line)).slice(0, 4), "250 ");
          }
          // No octet follows: the reply must not wait for them.
          await s.client.send(`BDAT ${octets}${c.args}\r\n`);
          assertEquals(
            await s.client.reply(),
            "552 5.3.4 Chunk exceeds message size limit, closing connection",
          );
          assertEquals(await s.done, { reason: "tooBig", messagesAccepted: 0 });
          assertEquals(s.sink.accepted.length, 0);
        } finally {
          await s.end();
        }
      });
    }
  }
});
