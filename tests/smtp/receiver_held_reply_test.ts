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
 * message's replies must come while the second body is still arriving.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startReady } from "./_session.ts";

Deno.test("receiver: a committed message's 250 is not held while the next pipelined BDAT chunk trickles in (review wt16-r1 E)", async () => {
  const s = await startReady();
  let isDone = false;
  try {
    await s.client.send(
      "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\nBDAT 5 LAST\r\nhello" +
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<y@d.test>\r\nBDAT 40 LAST\r\n",
    );
    const started = Date.now();
    const sending = (async () => {
      for (let i = 0; i < 40 && !isDone; i++) {
        await new Promise((r) => setTimeout(r, 50));
        await s.client.send("y").catch(() => {});
      }
    })();
    const first = [];
    for (let i = 0; i < 3; i++) first.push(await s.client.reply(5_000));
    const firstAfterMs = Date.now() - started;
    await sending;
    assertEquals(first.map((r) => r.slice(0, 3)), ["250", "250", "250"]);
    assertEquals(s.sink.accepted.length >= 1, true);
    assert(
      firstAfterMs < 1_000,
      `the first message's replies came ${firstAfterMs} ms later, after the next body ended`,
    );
    assertEquals((await s.client.replies(3)).map((r) => r.slice(0, 3)), ["250", "250", "250"]);
  } finally {
    isDone = true;
    await s.end();
  }
});
