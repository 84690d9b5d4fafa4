/**
 * PRDR (draft-hall-prdr-00) end to end inside one process: the receiver offers it and answers
 * 353 + one reply per recipient + a final reply; the sender asks for it and settles each
 * recipient by its own reply; the LMTP sink takes every recipient and hands up each LMTP reply.
 */
import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startReady } from "./_session.ts";
import { finish, message, outcomeCodes, ready, setup } from "./_sender_fixture.ts";
import { reply } from "../../src/wire/reply.ts";
import type { CaptureOptions, CaptureServer } from "../_helpers/capture_smtp.ts";
import { withCapturedSink } from "../_helpers/captured_sink.ts";
import { sessionInfo } from "../_helpers/session_info.ts";
import { FakeSink } from "../_helpers/fake_sink.ts";

const enc = new TextEncoder();

/** A sink whose transactions answer per recipient: `carol` gets 452, the others 250. */
function perRecipientSink(): FakeSink {
  return new FakeSink({
    finishReply: reply(250, "2.0.0", "one for all"),
    replyEach: ({ address: a }) =>
      a.startsWith("carol@")
        ? reply(452, "4.2.2", `Mailbox full <${a}>`)
        : reply(250, "2.0.0", `Delivered <${a}>`),
  });
}

Deno.test("SmtpReceiver with PRDR answers 353, one reply per recipient, then the final reply (#10)", async (t) => {
  await t.step("offered and asked for", async () => {
    const sink = perRecipientSink();
    const s = await startReady({ otherSink: sink, options: { offersPrdr: true } });
    const ehlo = await s.client.command("EHLO provider.test");
    assert(ehlo.includes("250-PRDR") || ehlo.includes("250 PRDR"), ehlo);
    await s.client.send(
      "MAIL FROM:<s@x.test> PRDR\r\nRCPT TO:<bob@d.test>\r\nRCPT TO:<carol@d.test>\r\n" +
        "RCPT TO:<dave@d.test>\r\nDATA\r\n",
    );
    assertEquals((await s.client.replies(5)).map((r) => r.slice(0, 3)), [
      "250",
      "250",
      "250",
      "250",
      "354",
    ]);
    await s.client.send("Subject: x\r\n\r\nhi\r\n.\r\n");
    assertEquals(await s.client.replies(5), [
      "353 PRDR content analysis beginning",
      "250 2.0.0 Delivered <bob@d.test>",
      "452 4.2.2 Mailbox full <carol@d.test>",
      "250 2.0.0 Delivered <dave@d.test>",
      "250 2.0.0 Message accepted, see the reply for each recipient",
    ]);
    assertEquals(sink.transactions[0]?.mail.prdr, true);
    await s.end();
  });
  await t.step("not asked for: one reply", async () => {
    const s = await startReady({
      otherSink: perRecipientSink(),
      options: { offersPrdr: true },
    });
    await s.client.send("MAIL FROM:<s@x.test>\r\nRCPT TO:<carol@d.test>\r\nDATA\r\n");
    await s.client.replies(3);
    await s.client.send("x\r\n.\r\n");
    assertEquals(await s.client.reply(), "250 2.0.0 one for all");
    await s.end();
  });
  await t.step("not offered: the parameter is unknown", async () => {
    const s = await startReady({ otherSink: perRecipientSink() });
    assertEquals(
      await s.client.command("MAIL FROM:<s@x.test> PRDR"),
      "555 5.5.4 Unsupported parameter",
    );
    await s.end();
  });
});

Deno.test("SmtpSender asks for PRDR and settles each recipient by its own reply (#10)", async (t) => {
  await t.step("353 and replies per recipient", async () => {
    const f = setup({
      extensions: ["PIPELINING", "8BITMIME", "PRDR"],
      afterData: (_b, view) =>
        ["353 PRDR content analysis beginning", ...view.accepted.map((a) => `250 2.0.0 <${a}>`)]
          .concat("250 2.0.0 done").join("\n"),
    });
    await ready(f);
    const r = await f.sender.sendMany([
      message({ recipients: ["bob@d.test", "carol@d.test", "dave@d.test"] }),
      message({ recipients: ["eve@d.test", "frank@d.test"] }),
    ], () => {});
    assertEquals(r, { sent: 2, connectionLost: false });
    await finish(f);
    assertEquals(f.server.commands.filter((c) => c.startsWith("MAIL")), [
      "MAIL FROM:<sender@remote.test> PRDR",
      "MAIL FROM:<sender@remote.test> PRDR",
    ]);
  });
  await t.step("outcomes", async () => {
    const f = setup({
      extensions: ["PIPELINING", "PRDR"],
      afterData: (_b, view) =>
        view.mailCount === 1
          ? "353 go\n250 2.0.0 bob\n452 4.2.2 carol full\n250 2.0.0 dave\n250 2.0.0 done"
          : undefined,
    });
    await ready(f);
    const r = await f.sender.send(
      message({ recipients: ["bob@d.test", "carol@d.test", "dave@d.test"] }),
    );
    assertEquals(outcomeCodes(r), ["delivered 250", "deferred 452", "delivered 250"]);
    assertEquals(r.recipients[1]?.reply.enhanced, "4.2.2");
    // The session is in step: the next message gets its own replies.
    assertEquals(outcomeCodes(await f.sender.send(message())), ["delivered 250"]);
    await finish(f);
  });
  await t.step("a server that offers PRDR may still answer once for all", async () => {
    const f = setup({ extensions: ["PIPELINING", "PRDR"] });
    await ready(f);
    const r = await f.sender.send(message({ recipients: ["a@d.test", "b@d.test"] }));
    assertEquals(outcomeCodes(r), ["delivered 250", "delivered 250"]);
    await finish(f);
  });
});

const SESSION = sessionInfo();

Deno.test("LocalSmtpSink over LMTP under PRDR takes every recipient and answers each (#10)", async () => {
  const captureOpts: CaptureOptions = {
    protocol: "lmtp",
    dataReply: (a) => a.startsWith("carol@") ? "452 4.2.2 Mailbox full" : undefined,
  };
  let lmtp: CaptureServer | undefined;
  await withCapturedSink(captureOpts, async (sink, capture) => {
    lmtp = capture;
    const tx = await sink.begin({ address: "s@x.test", params: {}, prdr: true }, SESSION);
    assert("write" in tx);
    assert(tx.finishEach !== undefined, "offered per-recipient replies");
    for (const a of ["bob@d.test", "carol@d.test", "dave@d.test"]) {
      assertEquals((await tx.addRecipient({ address: a, domain: "d.test" })).code, 250);
    }
    await tx.write(enc.encode("Subject: x\r\n\r\nhi\r\n"));
    const replies = await tx.finishEach();
    assertEquals(replies.map((r) => r.code), [250, 452, 250]);
    assertEquals(sink.splitRecipients, 0);
    // Without PRDR the one-recipient rule still holds.
    const plain = await sink.begin({ address: "s@x.test", params: {} }, SESSION);
    assert("write" in plain);
    assertEquals(plain.finishEach, undefined);
    await plain.addRecipient({ address: "bob@d.test", domain: "d.test" });
    assertEquals(
      (await plain.addRecipient({ address: "dave@d.test", domain: "d.test" })).code,
      452,
    );
    await plain.abort();
  }, { hostname: "pi.test" });
  assertEquals(lmtp?.messages.map((m) => m.recipients.length), [3]);
});
