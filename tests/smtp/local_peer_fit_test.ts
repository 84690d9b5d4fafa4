/**
 * The customer's hand-off to its local mail system is a client like the drain and outbound
 * (docs/protocol.md §4.8, §5.4): it uses only the extensions the local server offered, and what
 * goes upstream to the provider is a well-formed reply of its stage, with an enhanced status code
 * (the customer's receiver offers ENHANCEDSTATUSCODES), whatever the local server said.
 * - a UTF-8 envelope (SMTPUTF8) for a local server without SMTPUTF8: `553 5.6.7`, no MAIL sent
 *   (RFC 6531 §3.4); with SMTPUTF8 offered, MAIL carries it;
 * - 8-bit content for a local server without 8BITMIME, declared (`554 5.6.3` at MAIL) or not
 *   (`554 5.6.3` at the end, the local side never sees the end of data);
 * - a local reply without an enhanced code goes up with its class's `X.0.0` (RFC 3463 §3.1);
 * - a local reply out of place (3xx to RCPT or after the body) goes up as `451 4.3.0` and the
 *   link is dropped; any 2xx to MAIL is an accepted MAIL (RFC 5321 §4.2.1), with or without
 *   local PIPELINING.
 */
import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import type { LocalSmtpSink } from "../../src/smtp/sinks/local_smtp.ts";
import type { MessageParams } from "../../src/queue/types.ts";
import type { Reply } from "../../src/wire/reply.ts";
import { withCapturedSink } from "../_helpers/captured_sink.ts";
import { sessionInfo } from "../_helpers/session_info.ts";

const SESSION = sessionInfo();
const enc = new TextEncoder();

/** One transaction through the sink: the replies the provider would get. */
async function deliver(
  sink: LocalSmtpSink,
  from: string,
  params: MessageParams,
  rcpts: readonly string[],
  body: Uint8Array,
): Promise<{ mail: Reply | undefined; rcpt: Reply[]; final: Reply | undefined }> {
  const tx = await sink.begin({ address: from, params }, SESSION);
  if ("code" in tx) return { mail: tx, rcpt: [], final: undefined };
  const rcpt: Reply[] = [];
  for (const address of rcpts) {
    rcpt.push(await tx.addRecipient({ address, domain: address.split("@")[1] ?? "" }));
  }
  if (!rcpt.some((r) => r.code >= 200 && r.code < 300)) {
    await tx.abort();
    return { mail: undefined, rcpt, final: undefined };
  }
  for (let at = 0; at < body.length; at += 5) await tx.write(body.slice(at, at + 5));
  return { mail: undefined, rcpt, final: await tx.finish() };
}

const show = (r: Reply | undefined) => r === undefined ? "none" : `${r.code} ${r.enhanced}`;
const PLAIN_BODY = enc.encode("Subject: plain\r\n\r\nplain\r\n");

Deno.test("hand-off: a UTF-8 envelope goes only to a local server that offers SMTPUTF8 (553 5.6.7 otherwise)", async (t) => {
  await t.step("without SMTPUTF8: refused before any local command", async () => {
    await withCapturedSink({}, async (sink, capture) => {
      const d = await deliver(sink, "jörg@example.net", { smtputf8: true }, [
        "a@example.org",
      ], enc.encode("Subject: grüße\r\n\r\nx\r\n"));
      assertEquals(show(d.mail), "553 5.6.7");
      assertEquals(capture.commands.filter((c) => /^(MAIL|RCPT)/.test(c)), []);
      // The link is fine for the next message.
      const ok = await deliver(sink, "s@example.net", {}, ["a@example.org"], PLAIN_BODY);
      assertEquals(show(ok.final), "250 2.0.0");
      assertEquals(capture.messages.length, 1);
    });
  });
  await t.step("with SMTPUTF8: MAIL says SMTPUTF8", async () => {
    await withCapturedSink({ smtpUtf8: true }, async (sink, capture) => {
      const d = await deliver(sink, "jörg@example.net", { smtputf8: true }, [
        "ä@example.org",
      ], enc.encode("Subject: grüße\r\n\r\nx\r\n"));
      assertEquals(show(d.final), "250 2.0.0");
      assert(
        capture.commands.includes("MAIL FROM:<jörg@example.net> SMTPUTF8"),
        capture.commands.join("\n"),
      );
    });
  });
});

Deno.test("hand-off: 8-bit content goes only to a local server that offers 8BITMIME (554 5.6.3 otherwise)", async (t) => {
  const eightBit = enc.encode("Subject: caf\u00e9\r\n\r\nd\u00e9j\u00e0 vu\r\n");
  await t.step("declared BODY=8BITMIME: refused at MAIL", async () => {
    await withCapturedSink({ eightBitMime: false }, async (sink, capture) => {
      const d = await deliver(sink, "s@example.net", { body: "8BITMIME" }, [
        "a@example.org",
      ], eightBit);
      assertEquals(show(d.mail), "554 5.6.3");
      assertEquals(capture.commands.filter((c) => /^MAIL/.test(c)), []);
    });
  });
  await t.step(
    "undeclared: refused at the end, the local side never sees the end of data",
    async () => {
      await withCapturedSink({ eightBitMime: false }, async (sink, capture) => {
        const d = await deliver(sink, "s@example.net", {}, ["a@example.org"], eightBit);
        assertEquals(show(d.rcpt[0]), "250 2.1.5");
        assertEquals(show(d.final), "554 5.6.3");
        assertEquals(capture.messages.length, 0);
        // 7-bit mail still goes, on a new connection.
        const ok = await deliver(sink, "s@example.net", {}, ["a@example.org"], PLAIN_BODY);
        assertEquals(show(ok.final), "250 2.0.0");
        assertEquals(capture.messages.length, 1);
      });
    },
  );
  await t.step("with 8BITMIME: delivered as it is", async () => {
    await withCapturedSink({}, async (sink, capture) => {
      const d = await deliver(sink, "s@example.net", {}, ["a@example.org"], eightBit);
      assertEquals(show(d.final), "250 2.0.0");
      assertEquals(capture.messages[0]?.body, eightBit);
    });
  });
});

Deno.test("hand-off: a local reply without an enhanced code goes upstream with its class's X.0.0", async () => {
  await withCapturedSink({
    rcptReply: (a) => a.startsWith("nobody@") ? "550 No such user here" : "250 Ok",
    dataReply: () => "250 Ok: queued as 4AB3",
  }, async (sink) => {
    const d = await deliver(sink, "s@example.net", {}, [
      "a@example.org",
      "nobody@example.org",
    ], PLAIN_BODY);
    assertEquals(d.rcpt.map(show), ["250 2.0.0", "550 5.0.0"]);
    assertEquals(d.rcpt[1]?.lines, ["No such user here"]);
    assertEquals(show(d.final), "250 2.0.0");
  });
});

Deno.test("hand-off: a local reply out of place goes upstream as 451 4.3.0; any 2xx to MAIL accepts it", async (t) => {
  for (const pipelining of [true, false]) {
    await t.step(`251 to MAIL (local PIPELINING ${pipelining})`, async () => {
      await withCapturedSink({
        pipelining,
        mailReply: () => "251 2.1.0 Sender ok, will forward",
      }, async (sink, capture) => {
        const d = await deliver(sink, "s@example.net", {}, ["a@example.org"], PLAIN_BODY);
        assertEquals(show(d.mail), "none");
        assertEquals(d.rcpt.map(show), ["250 2.1.5"]);
        assertEquals(show(d.final), "250 2.0.0");
        assertEquals(capture.messages.length, 1);
      });
    });
  }
  await t.step("354 to RCPT", async () => {
    await withCapturedSink({ rcptReply: () => "354 Go ahead" }, async (sink) => {
      const d = await deliver(sink, "s@example.net", {}, ["a@example.org"], PLAIN_BODY);
      assertEquals(d.rcpt.map(show), ["451 4.3.0"]);
    });
  });
  await t.step("334 after the body", async () => {
    await withCapturedSink({ dataReply: () => "334 VXNlcm5hbWU6" }, async (sink) => {
      const d = await deliver(sink, "s@example.net", {}, ["a@example.org"], PLAIN_BODY);
      assertEquals(show(d.final), "451 4.3.0");
    });
  });
});
