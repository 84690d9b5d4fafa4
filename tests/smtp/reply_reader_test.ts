import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { LineReader, type PullSource } from "../../src/wire/line_reader.ts";
import { MAX_REPLY_LINE_BYTES, MAX_REPLY_LINES, readReply } from "../../src/smtp/reply_reader.ts";
import { connPair } from "../_helpers/conn_pair.ts";

const enc = new TextEncoder();

/** A source that hands out `chunks` and then ends. */
function source(...chunks: string[]): PullSource {
  const queue = chunks.map((c) => enc.encode(c));
  return { read: () => Promise.resolve(queue.shift() ?? null) };
}

function read(...chunks: string[]) {
  return readReply(new LineReader(source(...chunks)), { timeoutMs: 1000 });
}

Deno.test("readReply() assembles multi-line replies across chunks", async () => {
  assertEquals(await read("250-mx.test\r\n250-PIPE", "LINING\r\n250 SIZE 100\r\n"), {
    kind: "reply",
    reply: { code: 250, lines: ["mx.test", "PIPELINING", "SIZE 100"] },
  });
  assertEquals(await read("550 5.1.1 No such user\r\n"), {
    kind: "reply",
    reply: { code: 550, enhanced: "5.1.1", lines: ["No such user"] },
  });
});

Deno.test("readReply() leaves the next reply's bytes for the next read (pipelining)", async () => {
  const reader = new LineReader(source("250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 Go\r\n"));
  const codes = [];
  for (let i = 0; i < 3; i++) {
    const r = await readReply(reader, { timeoutMs: 1000 });
    codes.push(r.kind === "reply" ? r.reply.code : r.kind);
  }
  assertEquals(codes, [250, 250, 354]);
});

Deno.test("readReply() enforces the line limit at N and N+1", async () => {
  const line = (total: number) => "250 " + "x".repeat(total - 6) + "\r\n";
  assertEquals((await read(line(MAX_REPLY_LINE_BYTES))).kind, "reply");
  assertEquals(await read(line(MAX_REPLY_LINE_BYTES + 1)), {
    kind: "invalid",
    reason: "reply line too long",
  });
});

Deno.test("readReply() enforces the line count at N and N+1", async () => {
  const reply = (n: number) => "250-x\r\n".repeat(n - 1) + "250 end\r\n";
  assertEquals((await read(reply(MAX_REPLY_LINES))).kind, "reply");
  assertEquals(await read(reply(MAX_REPLY_LINES + 1)), {
    kind: "invalid",
    reason: "too many reply lines",
  });
});

Deno.test("readReply() turns peer misbehaviour into results", async (t) => {
  await t.step("end of stream mid-reply", async () => {
    assertEquals(await read("250-partial\r\n"), { kind: "eof" });
  });
  await t.step("bare LF", async () => {
    assertEquals((await read("250 ok\n")).kind, "invalid");
  });
  await t.step("no code", async () => {
    assertEquals((await read("hello\r\n")).kind, "invalid");
  });
  await t.step("code changes inside a reply", async () => {
    assertEquals((await read("250-a\r\n251 b\r\n")).kind, "invalid");
  });
  await t.step("silence", async () => {
    const { client, server } = connPair();
    const result = await readReply(new LineReader(client), { timeoutMs: 20 });
    assertEquals(result, { kind: "timeout" });
    server.destroy();
  });
  await t.step("a reply dribbled out past the deadline", async () => {
    const { client, server } = connPair();
    const pending = readReply(new LineReader(client), { timeoutMs: 60 });
    await server.write(enc.encode("250-a\r\n"));
    await new Promise((r) => setTimeout(r, 30));
    await server.write(enc.encode("250-b\r\n"));
    await new Promise((r) => setTimeout(r, 40));
    await server.write(enc.encode("250 c\r\n"));
    assertEquals(await pending, { kind: "timeout" });
    server.destroy();
  });
});
