// fetch's reader gives each body chunk back as soon as the hand-off's write resolved
// (`releaseConsumed`, #13). That is safe only while no sink of the customer's chain keeps a view
// of a chunk after its write: here each chunk's memory is taken away (detached) right after
// its write, and the message must still arrive byte-exact, over SMTP and into a Maildir.
import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { LedgerSink } from "../../src/odmr/_customer_ledger.ts";
import { AllowedDomainsSink } from "../../src/smtp/sinks/allowed_domains.ts";
import { MaildirSink } from "../../src/smtp/sinks/maildir.ts";
import type { MessageSink } from "../../src/smtp/sink.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { withCapturedSink } from "../_helpers/captured_sink.ts";
import { sessionInfo } from "../_helpers/session_info.ts";

const SESSION = sessionInfo();
const enc = new TextEncoder();

function body(): Uint8Array {
  const lines: string[] = ["Subject: t\r\n", "\r\n"];
  for (let i = 0; lines.join("").length < 200_000; i++) {
    lines.push(i < 3 ? `.dot ${i}\r\n` : `${"b".repeat(i % 900)}\r\n`);
  }
  return enc.encode(lines.join(""));
}

/** Sends `data` through `sink` in chunks of their own, each detached once written. */
async function deliverDetaching(sink: MessageSink, data: Uint8Array): Promise<number> {
  const chain = new LedgerSink(
    new AllowedDomainsSink(sink, ["example.org"], NULL_LOGGER),
    "t",
    NULL_LOGGER,
  );
  const tx = await chain.begin({ address: "s@example.net", params: {} }, SESSION);
  assert("write" in tx);
  const r = await tx.addRecipient({ address: "a@example.org", domain: "example.org" }, {
    dataFollows: true,
  });
  assertEquals(r.code, 250);
  for (let at = 0; at < data.length; at += 8191) {
    const chunk = data.slice(at, at + 8191); // owns its whole ArrayBuffer, as socket chunks do
    await tx.write(chunk);
    chunk.buffer.transfer(0);
    assertEquals(chunk.length, 0, "detached");
  }
  return (await tx.finish()).code;
}

Deno.test("customer hand-off (#13): no sink keeps a body chunk after its write (SMTP)", async () => {
  await withCapturedSink({}, async (sink, capture) => {
    const data = body();
    assertEquals(await deliverDetaching(sink, data), 250);
    assertEquals(capture.messages[0]?.body, data);
  });
});

Deno.test("customer hand-off (#13): no sink keeps a body chunk after its write (Maildir)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = body();
    const sink = new MaildirSink({ path: `${dir}/Maildir`, hostname: "pi.home" });
    assertEquals(await deliverDetaching(sink, data), 250);
    const names: string[] = [];
    for await (const e of Deno.readDir(`${dir}/Maildir/new`)) names.push(e.name);
    assertEquals(names.length, 1);
    const file = await Deno.readFile(`${dir}/Maildir/new/${names[0]}`);
    // The file holds Return-Path/Delivered-To, then the body with LF line ends.
    const text = new TextDecoder().decode(file);
    const want = new TextDecoder().decode(data).replaceAll("\r\n", "\n");
    assert(text.endsWith(want), "the body arrived whole");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
