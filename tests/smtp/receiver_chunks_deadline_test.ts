/**
 * The body deadline (SECURITY.md "slowloris in DATA / one BDAT chunk") bounds a BDAT message as a
 * whole, not each chunk: every chunk got a deadline of its own, so a client sending `BDAT 1`
 * with one octet just before each `smtp.timeout` held its slot for up to `max_message_size`
 * chunks (50 million at 50 MB), each answered 250. A chunk whose command and octets come in one
 * write must be stopped too (its octets are here: no read waits for them).
 *
 * Per read 1 s, the whole body 400 ms; chunks of one octet, each with its octet in one write,
 * one every 50 ms for 2 s: only a deadline over the whole message ends it early.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startReady } from "./_session.ts";

const OPTIONS = { dataTimeoutMs: 1_000, dataDeadlineMs: 400 };
const CHUNKS = 40;

Deno.test("receiver: the body deadline bounds a BDAT message's chunks together (421 4.4.2)", async () => {
  const s = await startReady({ options: OPTIONS });
  try {
    assertEquals((await s.client.command("MAIL FROM:<a@b.test>")).slice(0, 4), "250 ");
    assertEquals((await s.client.command("RCPT TO:<x@d.test>")).slice(0, 4), "250 ");
    let last = "";
    let taken = 0;
    for (; taken < CHUNKS; taken++) {
      await s.client.send("BDAT 1\r\ny");
      last = await s.client.reply();
      if (last !== "250 2.0.0 1 octets received") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assertEquals(last, "421 4.4.2 Message took too long, closing connection");
    assert(taken < CHUNKS);
    assertEquals((await s.done).reason, "timeout");
    assertEquals(s.sink.transactions[0]?.aborted, 1);
    assertEquals(s.sink.accepted.length, 0);
  } finally {
    await s.end();
  }
});
