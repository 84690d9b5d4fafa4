// The local hand-off sends a message's one recipient ahead (#13): MAIL, RCPT and DATA go out
// and the RCPT is answered 250 at once, the body waits for the local 354, and the local
// server's answer (its refusal of the RCPT included) is the reply at the end of data, for that
// recipient alone. At most MAX_AHEAD envelopes wait for their replies.
import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import type { LocalSmtpSink } from "../../src/smtp/sinks/local_smtp.ts";
import { MAX_AHEAD } from "../../src/smtp/sinks/_local_link.ts";
import type { SinkTransaction } from "../../src/smtp/sink.ts";
import type { Reply } from "../../src/wire/reply.ts";
import type { CaptureOptions, CaptureServer } from "../_helpers/capture_smtp.ts";
import { withCapturedSink } from "../_helpers/captured_sink.ts";
import { sessionInfo } from "../_helpers/session_info.ts";

const SESSION = sessionInfo();
const enc = new TextEncoder();
const show = (r: Reply) => `${r.code} ${r.enhanced ?? ""}`.trim();

function withSink(
  opts: CaptureOptions,
  fn: (sink: LocalSmtpSink, capture: CaptureServer) => Promise<void>,
): Promise<void> {
  return withCapturedSink(opts, fn, { timeouts: { commandMs: 5_000, dataFinalMs: 5_000 } });
}

/** A gate the capture server's replies wait for (`holdReplies`). */
function gate(): { readonly closed: Promise<void>; open: () => void } {
  let open = () => {};
  const closed = new Promise<void>((resolve) => open = resolve);
  return { closed, open };
}

/** `p`'s value, or "pending" if it has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | "pending"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"pending">((r) => timer = setTimeout(() => r("pending"), ms));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function begin(sink: LocalSmtpSink, size?: number): Promise<SinkTransaction> {
  const tx = await sink.begin({
    address: "s@example.net",
    params: {},
    ...(size === undefined ? {} : { declaredSize: size }),
  }, SESSION);
  assert("write" in tx, `MAIL refused: ${JSON.stringify(tx)}`);
  return tx;
}

function rcpt(tx: SinkTransaction, address: string): Promise<Reply> {
  return tx.addRecipient({ address, domain: "example.org" }, { dataFollows: true });
}

/** One message with one recipient, ended with `finish`. */
async function deliverOne(sink: LocalSmtpSink, address: string, body: Uint8Array) {
  const tx = await begin(sink);
  const r = await rcpt(tx, address);
  await tx.write(body);
  return { rcpt: show(r), final: show(await tx.finish()) };
}

Deno.test("local hand-off (#13): the one RCPT is answered before the local server replies; its refusal is the end of data's reply", async () => {
  const replies = gate();
  const rcptReply = (a: string) => a.startsWith("nobody@") ? "550 5.1.1 No such user" : undefined;
  await withSink({ rcptReply, holdReplies: replies.closed }, async (sink, capture) => {
    const tx = await begin(sink);
    // The local server has answered nothing yet.
    const r = await within(rcpt(tx, "nobody@example.org"), 2_000);
    assert(r !== "pending", "the RCPT waited for the local reply");
    assertEquals(show(r), "250 2.1.5");
    await tx.write(enc.encode("Subject: t\r\n\r\nbody\r\n"));
    replies.open();
    assertEquals(show(await tx.finish()), "550 5.1.1");
    // No body reached the local server; the link is still in step (RSET after the refusal).
    assertEquals(capture.messages.length, 0);
    const ok = await deliverOne(sink, "a@example.org", enc.encode("x\r\n"));
    assertEquals(ok, { rcpt: "250 2.1.5", final: "250 2.0.0" });
    assertEquals(capture.messages.map((m) => m.recipients), [["a@example.org"]]);
    assertEquals(capture.connections, 1);
    assert(capture.commands.includes("RSET"));
  });
});

Deno.test(`local hand-off (#13): ${MAX_AHEAD} envelopes wait for their replies at most, the next RCPT waits`, async () => {
  const replies = gate();
  await withSink({ holdReplies: replies.closed }, async (sink, capture) => {
    const body = (n: number) => enc.encode(`Subject: ${n}\r\n\r\nbody ${n}\r\n`);
    const finals: Promise<Reply>[] = [];
    // N = MAX_AHEAD: each RCPT is answered at once, each body ended (its reply to come).
    for (let n = 1; n <= MAX_AHEAD; n++) {
      const tx = await begin(sink, body(n).length);
      const r = await within(rcpt(tx, `m${n}@example.org`), 2_000);
      assert(r !== "pending", `RCPT ${n} waited`);
      await tx.write(body(n));
      assert(tx.finishLater !== undefined);
      finals.push((await tx.finishLater()).reply);
    }
    // N + 1: waits until the oldest envelope's replies came.
    const n = MAX_AHEAD + 1;
    const tx = await begin(sink, body(n).length);
    const waiting = rcpt(tx, `m${n}@example.org`);
    assertEquals(await within(waiting, 300), "pending");
    replies.open();
    assertEquals(show(await waiting), "250 2.1.5");
    await tx.write(body(n));
    finals.push(tx.finish());
    assertEquals((await Promise.all(finals)).map(show), Array(n).fill("250 2.0.0"));
    const text = new TextDecoder();
    assertEquals(
      capture.messages.map((m) => [m.recipients.join(), text.decode(m.body)]),
      Array.from({ length: n }, (_, i) => [`m${i + 1}@example.org`, text.decode(body(i + 1))]),
    );
    assertEquals(capture.connections, 1);
  });
});

Deno.test("local hand-off (#13): a 552 to the one RCPT is 452 at the end of data (temporary, as the provider reads it at RCPT)", async () => {
  await withSink({ rcptReply: () => "552 5.2.2 Mailbox full" }, async (sink, capture) => {
    const tx = await begin(sink);
    assertEquals(show(await rcpt(tx, "full@example.org")), "250 2.1.5");
    await tx.write(enc.encode("x\r\n"));
    const final = await tx.finish();
    assertEquals(final, { code: 452, enhanced: "4.2.2", lines: ["Mailbox full"] });
    assertEquals(capture.messages.length, 0);
  });
});

Deno.test("local hand-off (#13): a transaction sent ahead and aborted after the local 354 drops the link: nothing is delivered", async () => {
  await withSink({}, async (sink, capture) => {
    const tx = await begin(sink);
    assertEquals(show(await rcpt(tx, "a@example.org")), "250 2.1.5");
    await tx.write(enc.encode("Subject: t\r\n\r\npart"));
    await tx.abort();
    // The next transaction opens a new connection; the aborted body never ended.
    const ok = await deliverOne(sink, "b@example.org", enc.encode("x\r\n"));
    assertEquals(ok.final, "250 2.0.0");
    assertEquals(capture.messages.map((m) => m.recipients), [["b@example.org"]]);
    assertEquals(capture.connections, 2);
  });
});

Deno.test("local hand-off (#13): a transaction sent ahead and aborted after its DATA was refused: RSET, the link goes on", async () => {
  await withSink({ dataCommandReply: "451 4.3.0 Not now" }, async (sink, capture) => {
    const tx = await begin(sink);
    assertEquals(show(await rcpt(tx, "a@example.org")), "250 2.1.5");
    await tx.abort();
    assertEquals(capture.commands.filter((c) => !c.startsWith("EHLO")), [
      "MAIL FROM:<s@example.net>",
      "RCPT TO:<a@example.org>",
      "DATA",
      "RSET",
    ]);
    const next = await deliverOne(sink, "b@example.org", enc.encode("x\r\n"));
    assertEquals(next, { rcpt: "250 2.1.5", final: "451 4.3.0" });
    assertEquals(capture.messages.length, 0);
    assertEquals(capture.connections, 1);
  });
});

Deno.test("local hand-off (#13): a body bigger than its first buffer, sent ahead: byte-exact after the 354; the RCPT refused, none of it reaches the local server", async (t) => {
  // SIZE= announces far less than comes: the first buffer fills and must wait for the 354.
  const big = enc.encode("Subject: big\r\n\r\n" + "0123456789abcdef.\r\n..x\r\n".repeat(12_000));
  await t.step("accepted", async () => {
    await withSink({}, async (sink, capture) => {
      const tx = await begin(sink, 100);
      assertEquals(show(await rcpt(tx, "a@example.org")), "250 2.1.5");
      for (let at = 0; at < big.length; at += 7_000) await tx.write(big.subarray(at, at + 7_000));
      assertEquals(show(await tx.finish()), "250 2.0.0");
      assertEquals(capture.messages[0]?.body, big);
    });
  });
  await t.step("refused", async () => {
    await withSink({ rcptReply: () => "550 5.1.1 No such user" }, async (sink, capture) => {
      const tx = await begin(sink, 100);
      assertEquals(show(await rcpt(tx, "nobody@example.org")), "250 2.1.5");
      for (let at = 0; at < big.length; at += 7_000) await tx.write(big.subarray(at, at + 7_000));
      assertEquals(show(await tx.finish()), "550 5.1.1");
      assertEquals(capture.messages.length, 0);
      // Not one body line reached the server as a command.
      assertEquals(capture.commands.filter((c) => !c.startsWith("EHLO")), [
        "MAIL FROM:<s@example.net>",
        "RCPT TO:<nobody@example.org>",
        "DATA",
        "RSET",
      ]);
    });
  });
});
