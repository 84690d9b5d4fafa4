/**
 * A BDAT chunk in an open transaction whose declared size alone exceeds what is left of
 * `maxMessageBytes` can only make the message too big: it is refused `552 5.3.4` before any of
 * its octets (RFC 3030 lets the chunk fail; its octets must still be consumed to stay in step,
 * or the session closed). Up to `maxMessageBytes` the chunk is read and dropped (none of it goes
 * to the sink) and the session goes on, as for a chunk refused for its envelope
 * (receiver_skipped_chunk_size_test.ts); one over `maxMessageBytes` belongs to no message that
 * could be taken and is not read at all: the session ends. Reading it to its end under the body
 * deadline let `BDAT 999999999999999` stream gigabytes (or trickle for the whole deadline).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startReady, TEST_OPTIONS } from "./_session.ts";

const MAX = TEST_OPTIONS.maxMessageBytes;
const ENVELOPE = "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\n";
/** MAX octets of 100-octet lines: a body that passes the line check. */
const BODY = `${"y".repeat(98)}\r\n`.repeat(MAX / 100);

Deno.test("receiver: an accepted BDAT chunk declared over maxMessageBytes is not read: 552 5.3.4 and the session ends", async (t) => {
  for (const octets of [MAX + 1, 999_999_999_999_999]) {
    for (const last of ["", " LAST"]) {
      await t.step(`BDAT ${octets}${last}`, async () => {
        const s = await startReady();
        try {
          await s.client.send(ENVELOPE);
          assertEquals((await s.client.replies(2)).map((r) => r.slice(0, 4)), ["250 ", "250 "]);
          // No octet follows: the reply must not wait for them.
          await s.client.send(`BDAT ${octets}${last}\r\n`);
          assertEquals(
            await s.client.reply(5_000),
            "552 5.3.4 Chunk exceeds message size limit, closing connection",
          );
          assertEquals(await s.done, { reason: "tooBig", messagesAccepted: 0 });
          assertEquals(s.sink.transactions[0]?.aborted, 1);
          assertEquals(s.sink.accepted.length, 0);
        } finally {
          await s.end();
        }
      });
    }
  }
});

Deno.test("receiver: a BDAT chunk declared over what is left of maxMessageBytes is dropped unstored, 552 5.3.4, and the session goes on", async () => {
  const s = await startReady();
  try {
    await s.client.send(`${ENVELOPE}BDAT 6\r\n123456`);
    assertEquals((await s.client.replies(3)).map((r) => r.slice(0, 4)), ["250 ", "250 ", "250 "]);
    // MAX octets fit a message, but not behind the 6 taken: refused, read only to stay in step.
    await s.client.send(`BDAT ${MAX} LAST\r\n${BODY}NOOP\r\n`);
    assertEquals(await s.client.replies(2), [
      "552 5.3.4 Message size exceeds fixed maximum message size",
      "250 2.0.0 OK",
    ]);
    const tx = s.sink.transactions[0];
    assertEquals(tx?.aborted, 1);
    assertEquals(tx?.body().length, 6, "none of the refused chunk went to the sink");
    assertEquals(s.sink.accepted.length, 0);
    // The next message is taken.
    await s.client.send(`${ENVELOPE}BDAT ${MAX} LAST\r\n${BODY}`);
    assertEquals((await s.client.replies(3)).map((r) => r.slice(0, 4)), ["250 ", "250 ", "250 "]);
    assertEquals(s.sink.accepted.length, 1);
  } finally {
    await s.end();
  }
});
