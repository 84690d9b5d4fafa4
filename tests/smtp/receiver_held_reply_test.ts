/**
 * Review wt16-r1 E: replies held for a pipelined group go out after MAX_HOLD_MS at most
 * (src/smtp/_reply_queue.ts: "a peer that keeps input queued ... must still hear back in time:
 * its deadline runs for each reply"), but the bound is only checked between commands. A client
 * that pipelines the next message behind `BDAT n LAST` (RFC 3030 §4.2 allows it) and whose next
 * body takes long to arrive hears nothing, not even the 250 of the message already committed,
 * until that whole next chunk is read: a client that gives up on that 250 sends the committed
 * message again (a duplicate).
 *
 * Here the first message ends with its `BDAT 5 LAST`, the next message's MAIL, RCPT and `BDAT 40
 * LAST` follow in the same write, and its 40 octets come one every 50 ms (2 s in all). The first
 * message's replies must come while the second body is still arriving: before its last octet was
 * sent (an order, not a time: the receiver sends them before it waits for the first octet). The
 * same holds while a refused chunk is read only to stay in step.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startReady } from "./_session.ts";

const FIRST = "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\nBDAT 5 LAST\r\nhello";
const OCTETS = 40;

/**
 * Sends `first` and `next` in one write, then the `OCTETS` octets of the chunk `next` announced,
 * one every 50 ms; returns the first message's 3 replies, and how many octets were sent (at most)
 * when they had all come.
 */
async function firstRepliesWhileTrickling(
  s: Awaited<ReturnType<typeof startReady>>,
  next: string,
): Promise<{ replies: string[]; sentBefore: number; afterMs: number }> {
  let sent = 0;
  let isDone = false;
  await s.client.send(FIRST + next);
  const started = Date.now();
  const sending = (async () => {
    while (sent < OCTETS && !isDone) {
      await new Promise((r) => setTimeout(r, 50));
      sent++; // counted before it goes: the receiver cannot have it before
      await s.client.send("y").catch(() => {});
    }
  })();
  try {
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await s.client.reply(5_000));
    return { replies, sentBefore: sent, afterMs: Date.now() - started };
  } finally {
    await sending;
    isDone = true;
  }
}

Deno.test("receiver: a committed message's 250 is not held while the next pipelined BDAT chunk trickles in (review wt16-r1 E)", async () => {
  const s = await startReady();
  try {
    const first = await firstRepliesWhileTrickling(
      s,
      `MAIL FROM:<a@b.test>\r\nRCPT TO:<y@d.test>\r\nBDAT ${OCTETS} LAST\r\n`,
    );
    assertEquals(first.replies.map((r) => r.slice(0, 3)), ["250", "250", "250"]);
    assertEquals(s.sink.accepted.length >= 1, true);
    assert(
      first.sentBefore < OCTETS,
      `the first message's replies came ${first.afterMs} ms later, after the next body ended`,
    );
    assertEquals((await s.client.replies(3)).map((r) => r.slice(0, 3)), ["250", "250", "250"]);
    assertEquals(s.sink.accepted.length, 2);
  } finally {
    await s.end();
  }
});

Deno.test("receiver: a committed message's 250 is not held while a refused chunk behind it trickles in (review wt16-r1 E)", async () => {
  const s = await startReady();
  try {
    // No MAIL before it: the chunk is refused and read only to stay in step.
    const first = await firstRepliesWhileTrickling(s, `BDAT ${OCTETS}\r\n`);
    assertEquals(first.replies.map((r) => r.slice(0, 3)), ["250", "250", "250"]);
    assert(
      first.sentBefore < OCTETS,
      `the first message's replies came ${first.afterMs} ms later, after the refused chunk ended`,
    );
    assertEquals(await s.client.reply(), "503 5.5.1 Send MAIL first");
    assertEquals(s.sink.accepted.length, 1);
  } finally {
    await s.end();
  }
});
