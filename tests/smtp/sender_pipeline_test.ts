import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  dec,
  failingOnResend,
  finish,
  message,
  outcomeCodes,
  ready,
  setup,
  writtenText,
} from "./_sender_fixture.ts";
import type { OutboundMessage } from "../../src/smtp/sender.ts";

/** Runs sendMany and collects each reported message's recipient summary, in order. */
async function sendAll(
  f: ReturnType<typeof setup>,
  messages: Iterable<OutboundMessage>,
): Promise<{ seen: string[][]; sent: number; connectionLost: boolean }> {
  const seen: string[][] = [];
  const r = await f.sender.sendMany(messages, (_m, result) => {
    seen.push(outcomeCodes(result));
  });
  return { seen, ...r };
}

Deno.test("SmtpSender.sendMany() writes the next MAIL/RCPT/DATA right behind the previous end of data", async () => {
  const f = setup();
  await ready(f);
  const before = f.client.written.length;
  const r = await sendAll(f, [
    message({ recipients: ["a@c.test"] }),
    message({ recipients: ["b@c.test", "c@c.test"] }),
    message({ recipients: ["d@c.test"] }),
  ]);
  assertEquals(r.seen, [["delivered 250"], ["delivered 250", "delivered 250"], ["delivered 250"]]);
  assertEquals(r, { ...r, sent: 3, connectionLost: false });
  const writes = f.client.written.slice(before).map((c) => dec.decode(c));
  // envelope 1 | body 1 + "." + envelope 2 | body 2 + "." + envelope 3 | body 3 + "."
  assertEquals(writes.length, 4);
  assertEquals(
    writes[1],
    "Subject: hi\r\n\r\nhello\r\n.\r\n" +
      "MAIL FROM:<sender@remote.test> SIZE=22\r\nRCPT TO:<b@c.test>\r\nRCPT TO:<c@c.test>\r\nDATA\r\n",
  );
  assertEquals(writes[3], "Subject: hi\r\n\r\nhello\r\n.\r\n");
  assertEquals(f.server.bodies.length, 3);
  await finish(f);
});

Deno.test("SmtpSender.sendMany() settles each pipelined message by its own replies", async (t) => {
  await t.step("a refused end of data fails only that message", async () => {
    const f = setup({
      afterData: (_b, view) => view.mailCount === 1 ? "554 5.6.0 Content refused" : undefined,
    });
    await ready(f);
    const r = await sendAll(f, [message(), message()]);
    assertEquals(r.seen, [["failed 554"], ["delivered 250"]]);
    await finish(f);
  });
  await t.step("a temporary end-of-data reply defers only that message", async () => {
    const f = setup({
      afterData: (_b, view) => view.mailCount === 1 ? "451 4.3.0 Try later" : undefined,
    });
    await ready(f);
    const r = await sendAll(f, [message(), message()]);
    assertEquals(r.seen, [["deferred 451"], ["delivered 250"]]);
    await finish(f);
  });
  await t.step(
    "a MAIL refused for the pipelined message fails that one, not the one before",
    async () => {
      const f = setup({
        on: (_c, verb, view) =>
          // mailCount counts the MAILs before this one.
          verb === "MAIL" && view.mailCount === 1 ? "550 5.7.1 Sender refused" : undefined,
      });
      await ready(f);
      const r = await sendAll(f, [message(), message(), message()]);
      assertEquals(r.seen, [["delivered 250"], ["failed 550"], ["delivered 250"]]);
      // This lenient server still said 354 to the refused transaction's DATA: only "." went.
      assertEquals(f.server.bodies.map((b) => b.length > 0), [true, false, true]);
      await finish(f);
    },
  );
  await t.step("per-recipient RCPT refusals of the pipelined message map one by one", async () => {
    const f = setup({
      on: (c, verb) =>
        verb === "RCPT" && c.includes("<x@")
          ? "550 5.1.1 No such user"
          : verb === "RCPT" && c.includes("<y@")
          ? "452 4.2.2 Mailbox full"
          : undefined,
    });
    await ready(f);
    const r = await sendAll(f, [
      message(),
      message({ recipients: ["x@c.test", "ok@c.test", "y@c.test"] }),
    ]);
    assertEquals(r.seen, [["delivered 250"], ["failed 550", "delivered 250", "deferred 452"]]);
    await finish(f);
  });
});

Deno.test("SmtpSender.sendMany() defers both the message in flight and the pipelined one when the connection drops before the final reply", async () => {
  const f = setup({
    afterData: (_b, view) => view.mailCount === 1 ? { close: true } : undefined,
  });
  await ready(f);
  const r = await sendAll(f, [message(), message(), message()]);
  // Nothing was acknowledged: both stay queued (the third was never taken).
  assertEquals(r.seen, [["deferred 421"], ["deferred 421"]]);
  assertEquals(r.sent, 2);
  assertEquals(r.connectionLost, true);
  await f.server.done;
  f.client.destroy();
});

Deno.test("SmtpSender.sendMany() reports the message in flight before a failing source's error", async () => {
  const f = setup();
  await ready(f);
  const seen: string[][] = [];
  function* source() {
    yield message();
    throw new Error("queue read failed");
  }
  await assert.rejects(
    f.sender.sendMany(source(), (_m, result) => {
      seen.push(outcomeCodes(result));
    }),
    /queue read failed/,
  );
  assertEquals(seen, [["delivered 250"]]);
  await finish(f);
});

Deno.test("SmtpSender.sendMany() still sends a message whose recipients cannot be offered, without I/O", async () => {
  const f = setup();
  await ready(f);
  const r = await sendAll(f, [
    message(),
    message({ recipients: ["bad\r\nRSET@c.test"] }),
    message(),
  ]);
  assertEquals(r.seen, [["delivered 250"], ["failed 553"], ["delivered 250"]]);
  assertEquals(f.server.bodies.length, 2);
  await finish(f);
});

Deno.test("SmtpSender.sendMany() with lineRecords writes each line of the next envelope on its own", async () => {
  const f = setup({}, { lineRecords: true });
  await ready(f);
  const before = f.client.written.length;
  const r = await sendAll(f, [message(), message()]);
  assertEquals(r.seen, [["delivered 250"], ["delivered 250"]]);
  const writes = f.client.written.slice(before).map((c) => dec.decode(c));
  for (const w of writes) {
    assertEquals(w.indexOf("\r\n"), w.length - 2, `one line per write: ${JSON.stringify(w)}`);
  }
  assert(writtenText(f.client, before).includes(".\r\nMAIL FROM:<sender@remote.test>"));
  await finish(f);
});

Deno.test("SmtpSender.sendMany() without PIPELINING reads each final reply before the next MAIL", async () => {
  const f = setup({ extensions: ["8BITMIME"] });
  await ready(f);
  const before = f.client.written.length;
  const r = await sendAll(f, [message(), message()]);
  assertEquals(r.seen, [["delivered 250"], ["delivered 250"]]);
  const writes = f.client.written.slice(before).map((c) => dec.decode(c));
  assert(writes.every((w) => !w.includes(".\r\nMAIL")), JSON.stringify(writes));
  await finish(f);
});

Deno.test("SmtpSender.sendMany() leaves a message taken ahead but never offered unreported when the connection drops mid-body", async () => {
  const f = setup();
  await ready(f);
  let taken = 0;
  const seen: string[][] = [];
  function* source(): Generator<OutboundMessage> {
    taken++;
    // The body source fails after the envelope was accepted: the link is dropped mid-body.
    yield message({ body: failingOnResend() });
    taken++;
    yield message();
    taken++;
    yield message();
  }
  const r = await f.sender.sendMany(source(), (_m, result) => {
    seen.push(outcomeCodes(result));
  });
  assertEquals(seen, [["deferred 451"]]);
  assertEquals(r, { sent: 1, connectionLost: true });
  // The second message was read and planned while the first envelope's replies travelled.
  assertEquals(taken, 2);
  assertEquals(f.server.commands.filter((c) => c.startsWith("MAIL")).length, 1);
  f.client.destroy();
  await f.server.done;
});

Deno.test("SmtpSender.sendMany() fails poisoned messages taken ahead without I/O and pipelines on (#10)", async () => {
  const f = setup();
  await ready(f);
  const before = f.client.written.length;
  const r = await sendAll(f, [
    message({ recipients: ["a@c.test"] }),
    message({ recipients: ["b@c.test"], body: "bare\nLF\r\n" }),
    message({ recipients: ["c@c.test"], body: `${"x".repeat(999)}\r\n` }),
    message({ recipients: ["d@c.test"] }),
  ]);
  assertEquals(r.seen, [["delivered 250"], ["failed 554"], ["failed 554"], ["delivered 250"]]);
  assertEquals(r, { ...r, sent: 4, connectionLost: false });
  const writes = f.client.written.slice(before).map((c) => dec.decode(c));
  // envelope 1 | body 1 + "." | envelope 4 | body 4 + ".": the poisoned ones never went out
  // (a message taken ahead that cannot be sent leaves nothing to write behind the body).
  assertEquals(writes.length, 4);
  assert(writes[2]?.endsWith("RCPT TO:<d@c.test>\r\nDATA\r\n"), writes[2]);
  assert(!writtenText(f.client).includes("bare"));
  assertEquals(f.server.bodies.length, 2);
  await finish(f);
});
