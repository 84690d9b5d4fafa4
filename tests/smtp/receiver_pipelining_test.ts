// What the server role does for a pipelining client across messages (#13): the sink learns
// that DATA is next, and the reply at the end of the data waits for the rest of the group, so
// ".", MAIL, RCPT and DATA are answered in one write.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startReady } from "./_session.ts";
import { MAX_HELD_REPLIES } from "../../src/smtp/receiver.ts";
import type { MessageSink, SinkTransaction } from "../../src/smtp/sink.ts";
import { type Reply, reply } from "../../src/wire/reply.ts";

const dec = new TextDecoder();

/** The next chunk the receiver wrote, as text (the in-memory pair keeps write boundaries). */
async function nextWrite(s: Awaited<ReturnType<typeof startReady>>): Promise<string> {
  const chunk = await s.client.conn.read(2_000);
  return chunk === null ? "<closed>" : dec.decode(chunk);
}

Deno.test("SmtpReceiver (#13) tells the sink at the last RCPT that DATA is already buffered", async () => {
  const s = await startReady();
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@dest.test>\r\nRCPT TO:<y@dest.test>\r\n");
  await s.client.replies(3);
  await s.client.send("RCPT TO:<z@dest.test>\r\nDATA\r\n");
  await s.client.replies(2);
  await s.client.send("hi\r\n.\r\n");
  assertEquals(await s.client.reply(), "250 2.6.0 Queued as T1");
  // Lock-step DATA (not buffered when its RCPT was read) is not announced either.
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@dest.test>\r\n");
  await s.client.replies(2);
  await s.client.send("DATA\r\n");
  await s.client.reply();
  await s.client.send("hi\r\n.\r\n");
  await s.client.reply();
  assertEquals(s.sink.transactions.map((t) => t.dataFollows), [[false, false, true], [false]]);
  await s.end();
});

Deno.test("SmtpReceiver (#13) answers the end of data with the next pipelined group, in one write", async () => {
  const s = await startReady();
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@dest.test>\r\nDATA\r\n");
  assertEquals(
    await nextWrite(s),
    "250 2.1.0 Sender OK\r\n250 2.1.5 OK\r\n354 Start mail input; end with <CRLF>.<CRLF>\r\n",
  );
  // The end of one message and the next envelope in one chunk, as our provider sends them.
  await s.client.send("hi\r\n.\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<y@dest.test>\r\nDATA\r\n");
  assertEquals(
    await nextWrite(s),
    "250 2.6.0 Queued as T1\r\n250 2.1.0 Sender OK\r\n250 2.1.5 OK\r\n" +
      "354 Start mail input; end with <CRLF>.<CRLF>\r\n",
  );
  // A "." with nothing after it is answered at once (RFC 2920 §3.2: the input is empty).
  await s.client.send("again\r\n.\r\n");
  assertEquals(await nextWrite(s), "250 2.6.0 Queued as T2\r\n");
  assertEquals(s.sink.accepted.length, 2);
  await s.end();
});

Deno.test("SmtpReceiver (#13) holds the replies while the rest of the group is received already, in chunks of its own", async () => {
  const s = await startReady();
  // Three chunks queued in the Conn before the receiver reads the first: its reader's buffer is
  // empty after each line, yet more input is here (RFC 2920 §3.2), so one write answers all.
  await Promise.all(
    ["MAIL FROM:<a@b.test>\r\n", "RCPT TO:<x@dest.test>\r\n", "DATA\r\n"].map((c) =>
      s.client.send(c)
    ),
  );
  assertEquals(
    await nextWrite(s),
    "250 2.1.0 Sender OK\r\n250 2.1.5 OK\r\n354 Start mail input; end with <CRLF>.<CRLF>\r\n",
  );
  await s.client.send("hi\r\n.\r\n");
  assertEquals(await nextWrite(s), "250 2.6.0 Queued as T1\r\n");
  await s.end();
});

Deno.test("SmtpReceiver (#13) still answers DATA itself at once when it refuses it", async () => {
  const s = await startReady();
  // No recipient accepted: DATA's own 554 must not wait for the rest of the group.
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<bad>\r\nDATA\r\nNOOP\r\n");
  assertEquals(
    await nextWrite(s),
    "250 2.1.0 Sender OK\r\n501 5.5.4 Syntax: RCPT TO:<address> [parameters]\r\n" +
      "554 5.5.1 No valid recipients\r\n",
  );
  assertEquals(await nextWrite(s), "250 2.0.0 OK\r\n");
  await s.end();
});

Deno.test("SmtpReceiver (#13) tells the sink a BDAT is buffered, and answers BDAT LAST with the next pipelined group", async () => {
  const s = await startReady();
  await s.client.send(
    "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@dest.test>\r\nBDAT 4 LAST\r\nhi\r\n" +
      "RSET\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<y@dest.test>\r\nBDAT 4 LAST\r\nho\r\n",
  );
  // One write for everything the client pipelined: nothing was flushed in the middle.
  assertEquals(
    (await nextWrite(s)).split("\r\n").map((l) => l.slice(0, 3)),
    ["250", "250", "250", "250", "250", "250", "250", ""],
  );
  assertEquals(s.sink.transactions.map((t) => t.dataFollows), [[true], [true]]);
  await s.end();
});

Deno.test("SmtpReceiver (#13) holds the replies while a BDAT chunk is received already in a chunk of its own, and writes them before it waits for the peer", async () => {
  const s = await startReady();
  // The chunk's octets queued in the Conn apart from its command: no wait for the peer, so
  // everything is answered in one write (review wt16-r1 E sends held replies only before a wait).
  await Promise.all(
    [
      "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@dest.test>\r\nBDAT 4 LAST\r\n",
      "hi\r\n",
      "MAIL FROM:<a@b.test>\r\nRCPT TO:<y@dest.test>\r\nBDAT 4 LAST\r\n",
    ].map((c) => s.client.send(c)),
  );
  // The second chunk's octets are not sent yet: what is held goes out before the wait for them.
  assertEquals(
    (await nextWrite(s)).split("\r\n").map((l) => l.slice(0, 3)),
    ["250", "250", "250", "250", "250", ""],
  );
  await s.client.send("ho\r\n");
  assertEquals(await nextWrite(s), "250 2.6.0 Queued as T2\r\n");
  assertEquals(s.sink.accepted.length, 2);
  await s.end();
});

Deno.test("SmtpReceiver (#13) holds at most MAX_HELD_REPLIES replies for a peer that keeps input queued", async () => {
  const s = await startReady();
  const n = MAX_HELD_REPLIES * 2 + 1;
  // Everything in one chunk: more input is always here, so only the cap makes it write.
  await s.client.send("RSET\r\n".repeat(n));
  const sizes: number[] = [];
  let got = 0;
  while (got < n) {
    const text = await nextWrite(s);
    const lines = text.split("\r\n").filter((l) => l !== "");
    assertEquals(lines.every((l) => l.startsWith("250 ")), true, text);
    sizes.push(lines.length);
    got += lines.length;
  }
  // N per write, the last one whatever is left (N+1 would be one write too many held).
  assertEquals(sizes, [MAX_HELD_REPLIES, MAX_HELD_REPLIES, 1]);
  await s.end();
});

Deno.test("SmtpReceiver (#13) does not hold replies past MAX_HOLD_MS while each message waits on a slow sink", async () => {
  // fetch behind a slow local MTA, the provider's window of messages already received: the
  // provider's deadline runs for each reply, so replies must not wait for 25 slow messages.
  const finishMs = 60;
  let finished = 0;
  const slow: MessageSink = {
    begin: () =>
      Promise.resolve<SinkTransaction>({
        id: "S",
        addRecipient: () => Promise.resolve(reply(250, "2.1.5", "OK")),
        write: () => Promise.resolve(),
        finish: async () => {
          await new Promise((r) => setTimeout(r, finishMs));
          finished++;
          return reply(250, "2.6.0", "OK");
        },
        abort: () => Promise.resolve(),
      }),
  };
  const s = await startReady({ otherSink: slow });
  const messages = 30; // 4 replies each: 120 > MAX_HELD_REPLIES
  await s.client.send(
    "RSET\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@dest.test>\r\nBDAT 4 LAST\r\nhi\r\n"
      .repeat(messages),
  );
  const lines = (text: string) => text.split("\r\n").filter((l) => l !== "").length;
  let got = lines(await nextWrite(s));
  // MAX_HOLD_MS (200) is ~4 slow messages; 10 leaves room for a loaded machine.
  const bound = 10;
  // Without the age bound the first write came at MAX_HELD_REPLIES, after 25 slow messages.
  assertEquals(finished <= bound, true, `first replies after ${finished} slow messages`);
  while (got < messages * 4) got += lines(await nextWrite(s));
  assertEquals([got, finished], [messages * 4, messages]);
  await s.end();
});

/**
 * A sink whose end of data is answered later (`finishLater`, as the customer's local hand-off
 * under local PIPELINING): message `n`'s reply comes once `release(n)` is called. `inOrder`:
 * a message's RCPT is answered only after the message before it was (the local replies come
 * in order on one connection, so the next RCPT waits for the local reply to the ".").
 */
function laterSink(opts: { readonly inOrder?: boolean } = {}) {
  const gates = new Map<number, { promise: Promise<Reply>; resolve: (r: Reply) => void }>();
  const gate = (n: number) => {
    let g = gates.get(n);
    if (g === undefined) {
      let resolve!: (r: Reply) => void;
      const promise = new Promise<Reply>((r) => resolve = r);
      g = { promise, resolve };
      gates.set(n, g);
    }
    return g;
  };
  let begun = 0;
  const sink: MessageSink = {
    begin: () => {
      const n = ++begun;
      return Promise.resolve<SinkTransaction>({
        id: `L${n}`,
        addRecipient: async () => {
          if (opts.inOrder === true && n > 1) await gate(n - 1).promise;
          return reply(250, "2.1.5", "OK");
        },
        write: () => Promise.resolve(),
        finish: () => gate(n).promise,
        finishLater: () => Promise.resolve({ reply: gate(n).promise }),
        abort: () => Promise.resolve(),
      });
    },
  };
  const release = (n: number) => gate(n).resolve(reply(250, "2.6.0", `Delivered ${n}`));
  return { sink, release };
}

/** The reply lines written until one contains `text`; a read that waits 1.5 s throws. */
async function linesUntil(s: Awaited<ReturnType<typeof startReady>>, text: string) {
  let got = "";
  while (!got.includes(text)) {
    const chunk = await s.client.conn.read(1_500);
    if (chunk === null) break;
    got += dec.decode(chunk);
  }
  return got.split("\r\n").filter((l) => l !== "");
}

/** Message 1's envelope and final reply, then message 2's envelope (its final one held). */
const MESSAGE_1_THEN_ENVELOPE_2 = [
  "250 2.1.0 Sender OK",
  "250 2.1.5 OK",
  "250 2.6.0 Delivered 1",
  "250 2.1.0 Sender OK",
  "250 2.1.5 OK",
];

Deno.test("SmtpReceiver (#13, F2) writes a known final reply before waiting for the next message's slow sink", async () => {
  const { sink, release } = laterSink();
  const s = await startReady({ otherSink: sink });
  try {
    release(1);
    // Two pipelined messages and RSET (so both ends of data find more input: finishLater).
    await s.client.send(
      "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@dest.test>\r\nBDAT 4 LAST\r\nhi\r\n" +
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<y@dest.test>\r\nBDAT 4 LAST\r\nho\r\nRSET\r\n",
    );
    // Message 2's sink has not answered: message 1's 250 (and the replies before message 2's
    // end of data) must reach the client anyway. Without the fix nothing came until it did.
    assertEquals(await linesUntil(s, "Delivered 1"), MESSAGE_1_THEN_ENVELOPE_2);
    release(2);
    // The rest in order: message 2's reply, then RSET's.
    assertEquals(await nextWrite(s), "250 2.6.0 Delivered 2\r\n250 2.0.0 Reset OK\r\n");
  } finally {
    release(1);
    release(2);
    await s.end();
  }
});

Deno.test("SmtpReceiver (#13, F2) writes a known final reply while the next RCPT waits for a slow message's sink", async () => {
  // The local hand-off's order: message 3's RCPT waits for the local reply to message 2.
  const { sink, release } = laterSink({ inOrder: true });
  const s = await startReady({ otherSink: sink });
  try {
    release(1);
    const message = (to: string, body: string) =>
      `MAIL FROM:<a@b.test>\r\nRCPT TO:<${to}@dest.test>\r\nBDAT 4 LAST\r\n${body}\r\n`;
    await s.client.send(message("x", "m1") + message("y", "m2") + message("z", "m3") + "RSET\r\n");
    // Message 2's sink holds its reply, and with it message 3's RCPT: the replies known before
    // message 2's still go out (after MAX_HOLD_MS). Without it nothing came until it answered.
    assertEquals(await linesUntil(s, "Delivered 1"), MESSAGE_1_THEN_ENVELOPE_2);
    release(2);
    release(3);
    const rest: string[] = [];
    while (rest.length < 5) rest.push(await s.client.reply());
    assertEquals(rest, [
      "250 2.6.0 Delivered 2",
      "250 2.1.0 Sender OK",
      "250 2.1.5 OK",
      "250 2.6.0 Delivered 3",
      "250 2.0.0 Reset OK",
    ]);
  } finally {
    for (const n of [1, 2, 3]) release(n);
    await s.end();
  }
});
