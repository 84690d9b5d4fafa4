// The local hand-off under PIPELINING (RFC 2920) when the receiver says DATA is next: MAIL,
// RCPT and DATA go to the local server in one write, each local reply still maps to its own
// upstream reply, and a server without PIPELINING keeps getting one command at a time (#13).
import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { LocalSmtpSink } from "../../src/smtp/sinks/local_smtp.ts";
import type { Reply } from "../../src/wire/reply.ts";
import type { CaptureOptions, CaptureServer } from "../_helpers/capture_smtp.ts";
import { withCapturedSink } from "../_helpers/captured_sink.ts";
import { sessionInfo } from "../_helpers/session_info.ts";

const SESSION = sessionInfo();
const enc = new TextEncoder();

interface Delivery {
  readonly rcpt: string[];
  readonly final: string | undefined;
}

/**
 * One transaction the way the receiver drives it when the client pipelined its envelope: the
 * last RCPT says DATA follows; the body is written only when a recipient was accepted.
 */
async function deliver(
  sink: LocalSmtpSink,
  rcpts: readonly string[],
  body = enc.encode("Subject: t\r\n\r\n.dot\r\nbody\r\n"),
): Promise<Delivery> {
  const tx = await sink.begin({ address: "s@example.net", params: {} }, SESSION);
  assert("write" in tx, `MAIL refused: ${JSON.stringify(tx)}`);
  const rcpt: Reply[] = [];
  for (const [i, address] of rcpts.entries()) {
    const domain = address.split("@")[1] ?? "";
    rcpt.push(await tx.addRecipient({ address, domain }, { dataFollows: i === rcpts.length - 1 }));
  }
  const show = (r: Reply) => `${r.code} ${r.enhanced ?? ""}`.trim();
  if (!rcpt.some((r) => r.code === 250)) {
    await tx.abort();
    return { rcpt: rcpt.map(show), final: undefined };
  }
  await tx.write(body);
  return { rcpt: rcpt.map(show), final: show(await tx.finish()) };
}

function withSink(
  opts: CaptureOptions,
  fn: (sink: LocalSmtpSink, capture: CaptureServer) => Promise<void>,
  lmtp = false,
): Promise<void> {
  const captureOpts: CaptureOptions = { ...opts, ...(lmtp ? { protocol: "lmtp" } : {}) };
  return withCapturedSink(captureOpts, fn, { timeouts: { commandMs: 5_000 } });
}

/** The arrivals that carried transaction commands (not EHLO/QUIT). */
function envelopeArrivals(arrivals: readonly string[][]): string[][] {
  return arrivals
    .map((a) => a.filter((c) => /^(MAIL|RCPT|DATA|RSET)/.test(c)))
    .filter((a) => a.length > 0);
}

Deno.test("local hand-off (#13): a pipelining local server gets MAIL, RCPT and DATA in one write", async () => {
  await withSink({}, async (sink, capture) => {
    const d = await deliver(sink, ["a@example.org"]);
    assertEquals(d, { rcpt: ["250 2.1.5"], final: "250 2.0.0" });
    const d2 = await deliver(sink, ["b@example.org", "c@example.org"]);
    assertEquals(d2, { rcpt: ["250 2.1.5", "250 2.1.5"], final: "250 2.0.0" });
    assertEquals(envelopeArrivals(capture.arrivals), [
      ["MAIL FROM:<s@example.net>", "RCPT TO:<a@example.org>", "DATA"],
      // Two recipients: MAIL with the first, DATA with the last.
      ["MAIL FROM:<s@example.net>", "RCPT TO:<b@example.org>"],
      ["RCPT TO:<c@example.org>", "DATA"],
    ]);
    assertEquals(capture.messages.map((m) => m.recipients), [
      ["a@example.org"],
      ["b@example.org", "c@example.org"],
    ]);
    assertEquals(capture.messages[0]?.body, enc.encode("Subject: t\r\n\r\n.dot\r\nbody\r\n"));
  });
});

Deno.test("local hand-off (#13): a local server without PIPELINING gets lock-step commands", async () => {
  await withSink({ pipelining: false }, async (sink, capture) => {
    const d = await deliver(sink, ["a@example.org", "b@example.org"]);
    assertEquals(d, { rcpt: ["250 2.1.5", "250 2.1.5"], final: "250 2.0.0" });
    // Each command waited for the reply to the one before: never two in one arrival.
    assertEquals(envelopeArrivals(capture.arrivals), [
      ["MAIL FROM:<s@example.net>"],
      ["RCPT TO:<a@example.org>"],
      ["RCPT TO:<b@example.org>"],
      ["DATA"],
    ]);
    assertEquals(capture.messages.length, 1);
  });
});

Deno.test("local hand-off (#13): local refusals of pipelined RCPTs map to each recipient", async (t) => {
  const rcptReply = (a: string) =>
    a.startsWith("full@")
      ? "452 4.2.2 Mailbox full"
      : a.startsWith("nobody@")
      ? "550 5.1.1 No such user"
      : undefined;
  await t.step("the last recipient refused, an earlier one accepted: the body goes", async () => {
    await withSink({ rcptReply }, async (sink, capture) => {
      const d = await deliver(sink, ["a@example.org", "full@example.org", "nobody@example.org"]);
      assertEquals(d, { rcpt: ["250 2.1.5", "452 4.2.2", "550 5.1.1"], final: "250 2.0.0" });
      assertEquals(capture.messages.map((m) => m.recipients), [["a@example.org"]]);
    });
  });
  await t.step("every recipient refused: the local DATA is refused, nothing is sent", async () => {
    await withSink({ rcptReply }, async (sink, capture) => {
      const d = await deliver(sink, ["full@example.org"]);
      assertEquals(d, { rcpt: ["452 4.2.2"], final: undefined });
      const d2 = await deliver(sink, ["nobody@example.org"]);
      assertEquals(d2, { rcpt: ["550 5.1.1"], final: undefined });
      // Still in step on the same connection.
      const ok = await deliver(sink, ["a@example.org"]);
      assertEquals(ok.final, "250 2.0.0");
      assertEquals(capture.messages.map((m) => m.recipients), [["a@example.org"]]);
      assertEquals(capture.connections, 1);
    });
  });
  await t.step("a refused MAIL: every recipient gets its refusal, no body", async () => {
    const mailReply = (a: string) => a === "s@example.net" ? "451 4.3.2 Try later" : undefined;
    await withSink({ mailReply }, async (sink, capture) => {
      const d = await deliver(sink, ["a@example.org"]);
      assertEquals(d, { rcpt: ["451 4.3.2"], final: undefined });
      assertEquals(capture.messages.length, 0);
    });
  });
});

Deno.test("local hand-off (#13): a 354 without accepted recipients drops the link, no empty message", async () => {
  await withSink(
    { rcptReply: () => "550 5.1.1 No such user", dataWithoutRecipients: true },
    async (sink, capture) => {
      const d = await deliver(sink, ["nobody@example.org"]);
      assertEquals(d, { rcpt: ["550 5.1.1"], final: undefined });
      // The local side never saw an end of data; the next transaction opens a new connection.
      const d2 = await deliver(sink, ["nobody@example.org"]);
      assertEquals(d2.final, undefined);
      assertEquals(capture.messages.length, 0);
      assertEquals(capture.connections, 2);
    },
  );
});

Deno.test("local hand-off (#13): a local refusal of the DATA sent ahead is the answer at the end of data", async () => {
  await withSink({ dataCommandReply: "451 4.3.0 Not now" }, async (sink, capture) => {
    const d = await deliver(sink, ["a@example.org"]);
    assertEquals(d, { rcpt: ["250 2.1.5"], final: "451 4.3.0" });
    assertEquals(capture.messages.length, 0);
    // RSET keeps the link in step: the next transaction goes on the same connection.
    assert(capture.commands.includes("RSET"));
    assertEquals(capture.connections, 1);
  });
});

Deno.test("local hand-off (#13): LMTP under PRDR sends DATA ahead and maps each recipient's reply", async () => {
  await withSink(
    { dataReply: (a) => a.startsWith("b@") ? "452 4.2.2 Mailbox full" : "250 2.0.0 OK" },
    async (sink, capture) => {
      const tx = await sink.begin({ address: "s@example.net", params: {}, prdr: true }, SESSION);
      assert("write" in tx && tx.finishEach !== undefined);
      for (const [i, address] of ["a@example.org", "b@example.org"].entries()) {
        const r = await tx.addRecipient({ address, domain: "example.org" }, {
          dataFollows: i === 1,
        });
        assertEquals(r.code, 250);
      }
      await tx.write(enc.encode("x\r\n"));
      assertEquals((await tx.finishEach()).map((r) => r.code), [250, 452]);
      assertEquals(envelopeArrivals(capture.arrivals), [
        ["MAIL FROM:<s@example.net>", "RCPT TO:<a@example.org>"],
        ["RCPT TO:<b@example.org>", "DATA"],
      ]);
    },
    true,
  );
});
