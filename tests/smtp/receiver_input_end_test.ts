/**
 * A receiver told `stopAtInputEnd` (fetch's, facing our provider) finishes nothing a client
 * that hung up sent before (#13): the provider that gave up waiting defers every message it
 * heard no reply for and sends it again, so a body finished after its hang-up, or a buffered
 * pipelined message run after it, was a certain duplicate (review rev11a R3).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startReady } from "./_session.ts";

/** A session whose server Conn says its input ended once `end()` was called. */
async function endingSession(stopAtInputEnd: boolean) {
  const s = await startReady({ options: { stopAtInputEnd } });
  let isEnded = false;
  Object.defineProperty(s.server, "inputEnded", { get: () => isEnded });
  return { s, end: () => isEnded = true };
}

for (const stopAtInputEnd of [true, false]) {
  Deno.test(`SmtpReceiver (#13, stopAtInputEnd ${stopAtInputEnd}): a body whose client hung up meanwhile is ${stopAtInputEnd ? "not finished" : "finished"}`, async () => {
    const { s, end } = await endingSession(stopAtInputEnd);
    await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@dest.test>\r\nBDAT 4 LAST\r\nhi");
    // The body's first bytes reached the sink: the receiver waits for its last two.
    for (let i = 0; i < 200 && (s.sink.transactions[0]?.chunks.length ?? 0) === 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    end();
    await s.client.send("\r\n");
    const tx = s.sink.transactions[0];
    if (stopAtInputEnd) {
      const outcome = await s.done;
      assertEquals([outcome.reason, tx?.finished, tx?.aborted], ["lost", false, 1]);
    } else {
      assertEquals((await s.client.replies(3))[2], "250 2.6.0 Queued as T1");
      assertEquals([tx?.finished, tx?.aborted], [true, 0]);
    }
    await s.end();
  });
}

Deno.test("SmtpReceiver (#13, stopAtInputEnd): commands buffered before the client hung up are not run", async () => {
  const { s, end } = await endingSession(true);
  end();
  await s.client.send(
    "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@dest.test>\r\nBDAT 4 LAST\r\nhi\r\nQUIT\r\n",
  );
  const outcome = await s.done;
  assertEquals([outcome.reason, s.sink.transactions.length], ["lost", 0]);
  await s.end();
});

Deno.test("SmtpReceiver (#13, stopAtInputEnd): a QUIT sent just before the client closed still ends the session as quit, not lost (fetch would exit 5 with everything delivered; review rev11c F2)", async () => {
  const { s, end } = await endingSession(true);
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@dest.test>\r\nBDAT 4 LAST\r\nhi\r\n");
  assertEquals((await s.client.replies(3))[2], "250 2.6.0 Queued as T1");
  end();
  await s.client.send("quit\r\n");
  const outcome = await s.done;
  assertEquals([outcome.reason, outcome.messagesAccepted], ["quit", 1]);
  await s.end();
});
