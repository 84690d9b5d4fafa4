/**
 * Replies held for a pipelined group go out before the receiver waits for the peer (RFC 2920
 * §3.2: a server flushes before it would block on a read). A client that pipelines the next
 * command behind the end of a message, and whose command line then arrives in two parts
 * (`...BDAT 5 LAST\r\nhelloNOO`, then `P\r\n`), must hear the committed message's 250 before the
 * rest of that line: held until the line ended (up to `smtp.timeout`), a client that gives up on
 * the 250 sends the committed message again (a duplicate).
 *
 * Order, not time: the rest of the line is sent only once the replies came. Held, they came
 * only with the idle timeout's 421, and the NOOP is never answered.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { type Session, startReady } from "./_session.ts";
import { FakeSink } from "../_helpers/fake_sink.ts";
import type { MessageSink } from "../../src/smtp/sink.ts";

const ENVELOPE = "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\n";

/** A BDAT message, then a NOOP line cut in two. */
const BDAT_THEN_CUT_NOOP = { head: `${ENVELOPE}BDAT 5 LAST\r\nhelloNOO`, rest: "P\r\n" };
const BDAT_REPLIES = ["250 2.1.0 Sender OK", "250 2.1.5 OK", "250 2.6.0 Queued as T1"];

/**
 * Sends `line.head`, whose last line is cut: the replies `want.before` must come while the rest
 * of that line is still missing (each read waits up to 5 s; held, they came only with the idle
 * timeout's 421). Then sends `line.rest`: its reply `want.after` says the session went on.
 */
async function repliesBeforeLineEnds(
  s: Session,
  line: { readonly head: string; readonly rest: string },
  want: { readonly before: readonly string[]; readonly after: string },
): Promise<void> {
  await s.client.send(line.head);
  const replies = [];
  for (let i = 0; i < want.before.length; i++) replies.push(await s.client.reply(5_000));
  assertEquals(replies, want.before);
  await s.client.send(line.rest);
  assertEquals(await s.client.reply(5_000), want.after, "the session went on");
}

Deno.test("receiver: a committed BDAT message's replies are not held while the next command line is only partly here", async () => {
  const s = await startReady();
  try {
    await repliesBeforeLineEnds(s, BDAT_THEN_CUT_NOOP, {
      before: BDAT_REPLIES,
      after: "250 2.0.0 OK",
    });
    assertEquals(s.sink.accepted.length, 1);
  } finally {
    await s.end();
  }
});

Deno.test("receiver: a committed DATA message's reply is not held while the next command line is only partly here", async () => {
  const s = await startReady();
  try {
    await s.client.send(`${ENVELOPE}DATA\r\n`);
    assertEquals((await s.client.replies(3)).map((r) => r.slice(0, 3)), ["250", "250", "354"]);
    await repliesBeforeLineEnds(s, { head: "hello\r\n.\r\nNOO", rest: "P\r\n" }, {
      before: ["250 2.6.0 Queued as T1"],
      after: "250 2.0.0 OK",
    });
    assertEquals(s.sink.accepted.length, 1);
  } finally {
    await s.end();
  }
});

Deno.test("receiver: replies to pipelined envelope commands are not held while the next command line is only partly here", async () => {
  const s = await startReady();
  try {
    await repliesBeforeLineEnds(s, { head: `${ENVELOPE}RS`, rest: "ET\r\n" }, {
      before: ["250 2.1.0 Sender OK", "250 2.1.5 OK"],
      after: "250 2.0.0 Reset OK",
    });
  } finally {
    await s.end();
  }
});

Deno.test("receiver: a final reply still to come (finishLater) goes out once known while the next command line is only partly here", async () => {
  const fake = new FakeSink();
  // The customer's local hand-off: the final reply is still to come when the next commands
  // are here already (src/smtp/sink.ts finishLater).
  const later: MessageSink = {
    async begin(mail, session) {
      const tx = await fake.begin(mail, session);
      if (!("id" in tx)) return tx;
      return { ...tx, finishLater: () => Promise.resolve({ reply: tx.finish() }) };
    },
  };
  const s = await startReady({ sink: fake, otherSink: later });
  try {
    await repliesBeforeLineEnds(s, BDAT_THEN_CUT_NOOP, {
      before: BDAT_REPLIES,
      after: "250 2.0.0 OK",
    });
  } finally {
    await s.end();
  }
});
