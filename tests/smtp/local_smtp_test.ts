import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { LocalSmtpSink } from "../../src/smtp/sinks/local_smtp.ts";
import type { SinkTransaction } from "../../src/smtp/sink.ts";
import type { Reply } from "../../src/wire/reply.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { withCapturedSink } from "../_helpers/captured_sink.ts";
import { sessionInfo } from "../_helpers/session_info.ts";

const SESSION = sessionInfo();
const enc = new TextEncoder();

/** A body with 8-bit bytes, dot lines and a long-ish line, CRLF ended. */
function sampleBody(): Uint8Array {
  const parts: number[] = [...enc.encode("Subject: t\r\n\r\n.\r\n..\r\n.x\r\ncaf\u00e9\r\n")];
  for (let b = 0; b < 256; b++) if (b !== 13 && b !== 10) parts.push(b);
  parts.push(...enc.encode("\r\n" + "y".repeat(900) + "\r\nend\r\n"));
  return Uint8Array.from(parts);
}

interface Delivery {
  readonly rcpt: Reply[];
  readonly final: Reply | undefined;
}

async function deliver(
  sink: LocalSmtpSink,
  from: string,
  rcpts: string[],
  body: Uint8Array,
  chunk = 7,
): Promise<Delivery> {
  const tx = await sink.begin({ address: from, params: {} }, SESSION);
  assert("write" in tx, `MAIL refused: ${JSON.stringify(tx)}`);
  const rcpt: Reply[] = [];
  for (const address of rcpts) {
    rcpt.push(await tx.addRecipient({ address, domain: address.split("@")[1] ?? "" }));
  }
  if (!rcpt.some((r) => r.code === 250)) {
    await tx.abort();
    return { rcpt, final: undefined };
  }
  for (let at = 0; at < body.length; at += chunk) await tx.write(body.slice(at, at + chunk));
  return { rcpt, final: await tx.finish() };
}

Deno.test("LocalSmtpSink relays byte-exact over SMTP and maps a local RCPT refusal", async () => {
  const rcptReply = (a: string) => a.startsWith("nobody@") ? "550 5.1.1 No such user" : undefined;
  await withCapturedSink({ rcptReply }, async (sink, capture) => {
    const body = sampleBody();
    const d = await deliver(sink, "s@example.net", ["a@example.org", "nobody@example.org"], body);
    assertEquals(d.rcpt.map((r) => r.code), [250, 550]);
    assertEquals(d.rcpt[1]?.enhanced, "5.1.1");
    assertEquals(d.final?.code, 250);
    assertEquals(capture.messages.length, 1);
    assertEquals(capture.messages[0]?.mailFrom, "s@example.net");
    assertEquals(capture.messages[0]?.recipients, ["a@example.org"]);
    assertEquals(capture.messages[0]?.body, body);
    // A second transaction reuses the connection.
    const d2 = await deliver(sink, "", ["b@example.org"], enc.encode("x\r\n"));
    assertEquals(d2.final?.code, 250);
    assertEquals(capture.connections, 1);
    assertEquals(capture.messages[1]?.mailFrom, "");
    assert(capture.commands.includes("EHLO pi.home"));
  });
});

Deno.test("LocalSmtpSink passes a local 451 at end of DATA upstream", async () => {
  await withCapturedSink({ dataReply: () => "451 4.3.0 Try later" }, async (sink) => {
    const d = await deliver(sink, "s@example.net", ["a@example.org"], enc.encode("x\r\n"));
    assertEquals(d.final?.code, 451);
    assertEquals(d.final?.enhanced, "4.3.0");
  });
});

Deno.test("LocalSmtpSink over LMTP takes one recipient per transaction (452 4.5.3 for the rest)", async () => {
  await withCapturedSink({
    protocol: "lmtp",
    dataReply: (a) => `250 2.0.0 <${a}> delivered`,
  }, async (sink, capture) => {
    const body = sampleBody();
    const d = await deliver(sink, "s@example.net", ["a@example.org", "b@example.org"], body, 4096);
    assertEquals(d.rcpt.map((r) => `${r.code} ${r.enhanced}`), ["250 2.1.5", "452 4.5.3"]);
    assertEquals(d.final?.code, 250);
    assertEquals(sink.splitRecipients, 1);
    assertEquals(capture.messages[0]?.recipients, ["a@example.org"]);
    assertEquals(capture.messages[0]?.body, body);
    assert(capture.commands.includes("LHLO pi.home"));
  });
});

Deno.test("LocalSmtpSink over LMTP on a unix socket maps the per-recipient reply", async () => {
  const dir = await Deno.makeTempDir();
  const capture = await startCaptureServer({
    protocol: "lmtp",
    unixPath: `${dir}/lmtp.sock`,
    dataReply: () => "552 5.2.2 Mailbox full",
  });
  const sink = new LocalSmtpSink({
    target: { kind: "lmtpUnix", path: `${dir}/lmtp.sock` },
    hostname: "pi.home",
  });
  try {
    const d = await deliver(sink, "s@example.net", ["a@example.org"], enc.encode("x\r\n"));
    assertEquals(d.final?.code, 552);
    assertEquals(d.final?.enhanced, "5.2.2");
  } finally {
    await sink.close();
    await capture.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LocalSmtpSink answers 451 when the local server is down", async () => {
  const capture = await startCaptureServer();
  const port = capture.port;
  await capture.close();
  const sink = new LocalSmtpSink({
    target: { kind: "smtp", host: "127.0.0.1", port },
    hostname: "pi.home",
  });
  const r = await sink.begin({ address: "s@example.net", params: {} }, SESSION);
  assert("code" in r);
  assertEquals(r.code, 451);
});

Deno.test("LocalSmtpSink abort() mid-DATA drops the link so nothing is delivered, then reconnects", async () => {
  await withCapturedSink({}, async (sink, capture) => {
    const tx = await sink.begin({ address: "s@example.net", params: {} }, SESSION);
    assert("write" in tx);
    await (tx as SinkTransaction).addRecipient({ address: "a@example.org", domain: "example.org" });
    await tx.write(enc.encode("Subject: half\r\n\r\nhalf a mes"));
    await tx.abort();
    const d = await deliver(sink, "s@example.net", ["a@example.org"], enc.encode("whole\r\n"));
    assertEquals(d.final?.code, 250);
    assertEquals(capture.messages.length, 1);
    assertEquals(capture.messages[0]?.body, enc.encode("whole\r\n"));
    assertEquals(capture.connections, 2);
  });
});

Deno.test("LocalSmtpSink sends MAIL with the first RCPT under PIPELINING and maps a MAIL refusal to each recipient", async (t) => {
  const rows = [
    { mail: "451 4.3.2 Try later", want: "451 4.3.2", why: "temporary: the provider defers" },
    { mail: "553 5.7.1 Sender refused", want: "553 5.7.1", why: "permanent: the provider fails" },
    {
      mail: "552 5.3.4 Too big",
      want: "554 5.3.4",
      why: "552 at RCPT would read as temporary upstream; at MAIL it is permanent",
    },
  ];
  for (const row of rows) {
    await t.step(row.why, async () => {
      await withCapturedSink({
        mailReply: (a) => a === "bad@example.net" ? row.mail : undefined,
      }, async (sink, capture) => {
        const d = await deliver(
          sink,
          "bad@example.net",
          ["a@example.org", "b@example.org"],
          enc.encode("x\r\n"),
        );
        assertEquals(d.rcpt.map((r) => `${r.code} ${r.enhanced}`), [row.want, row.want]);
        assertEquals(d.final, undefined);
        // MAIL and the first RCPT went out together; the second RCPT was not relayed at all.
        assertEquals(capture.commands.filter((c) => /^(MAIL|RCPT)/.test(c)), [
          "MAIL FROM:<bad@example.net>",
          "RCPT TO:<a@example.org>",
        ]);
        // The link stays in step: the next transaction is delivered on the same connection.
        const ok = await deliver(sink, "s@example.net", ["c@example.org"], enc.encode("y\r\n"));
        assertEquals(ok.final?.code, 250);
        assertEquals(capture.messages.map((m) => m.recipients), [["c@example.org"]]);
        assertEquals(capture.connections, 1);
      });
    });
  }
});

Deno.test("LocalSmtpSink without PIPELINING waits for the MAIL reply and returns a refusal at MAIL", async () => {
  await withCapturedSink({
    pipelining: false,
    mailReply: (a) => a === "bad@example.net" ? "553 5.7.1 Sender refused" : undefined,
  }, async (sink, capture) => {
    const refused = await sink.begin({ address: "bad@example.net", params: {} }, SESSION);
    assert("code" in refused);
    assertEquals(refused.code, 553);
    const d = await deliver(sink, "s@example.net", ["a@example.org"], enc.encode("x\r\n"));
    assertEquals(d.final?.code, 250);
    assertEquals(capture.messages[0]?.recipients, ["a@example.org"]);
  });
});

Deno.test("LocalSmtpSink sends no MAIL at all when no recipient reached the local side", async () => {
  await withCapturedSink({}, async (sink, capture) => {
    const tx = await sink.begin({ address: "s@example.net", params: {} }, SESSION);
    assert("write" in tx);
    await tx.abort();
    const d = await deliver(sink, "s@example.net", ["a@example.org"], enc.encode("x\r\n"));
    assertEquals(d.final?.code, 250);
    assertEquals(capture.commands.filter((c) => /^(MAIL|RSET)/.test(c)), [
      "MAIL FROM:<s@example.net>",
    ]);
  });
});

Deno.test("LocalSmtpSink relays a body larger than one gathered write byte-exact", async () => {
  await withCapturedSink({}, async (sink, capture) => {
    const lines: string[] = [];
    for (let i = 0; lines.join("").length < 300_000; i++) {
      lines.push(i % 7 === 0 ? `.line ${i}\r\n` : `${"z".repeat(i % 990)}\r\n`);
    }
    const body = enc.encode(lines.join(""));
    // Odd chunk sizes: CRLF and line-start dots fall on chunk boundaries.
    const d = await deliver(sink, "s@example.net", ["a@example.org"], body, 4093);
    assertEquals(d.final?.code, 250);
    assertEquals(capture.messages[0]?.body, body);
  });
});

Deno.test("LocalSmtpSink relays byte-exact whatever SIZE= announced (#13: its first write buffer is sized by it)", async (t) => {
  const lines: string[] = [];
  for (let i = 0; lines.join("").length < 150_000; i++) {
    lines.push(i % 3 === 0 ? `.dot ${i}\r\n` : `${"w".repeat(i % 700)}\r\n`);
  }
  const body = enc.encode(lines.join(""));
  const small = enc.encode("..\r\n.\r\nx\r\n");
  const rows = [
    { why: "the true size", body, size: body.length },
    { why: "far too small", body, size: 10 },
    { why: "zero", body: small, size: 0 },
    { why: "larger than the body", body: small, size: 1_000_000 },
    { why: "a one-line body of exactly the size", body: enc.encode("y\r\n"), size: 3 },
  ];
  for (const row of rows) {
    await t.step(row.why, async () => {
      await withCapturedSink({}, async (sink, capture) => {
        const tx = await sink.begin(
          { address: "s@example.net", params: {}, declaredSize: row.size },
          SESSION,
        );
        assert("write" in tx);
        assertEquals((await tx.addRecipient({ address: "a@example.org", domain: "" })).code, 250);
        for (let at = 0; at < row.body.length; at += 4093) {
          await tx.write(row.body.slice(at, at + 4093));
        }
        assertEquals((await tx.finish()).code, 250);
        assertEquals(capture.messages[0]?.body, row.body);
      });
    });
  }
});
