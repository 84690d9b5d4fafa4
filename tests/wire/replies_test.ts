import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { formatReply, reply } from "../../src/wire/reply.ts";
import { queuedReply, REPLIES, replyBytes } from "../../src/wire/replies.ts";

const decoder = new TextDecoder();

Deno.test("replyBytes() writes every fixed reply exactly as formatReply() does (#13)", () => {
  for (const [name, r] of Object.entries(REPLIES)) {
    assertEquals(decoder.decode(replyBytes(r)), decoder.decode(formatReply(r)), name);
  }
  assertEquals(decoder.decode(replyBytes(REPLIES.ok)), "250 2.0.0 OK\r\n");
});

Deno.test("replyBytes() formats a reply built at run time, not a fixed one it resembles", () => {
  assertEquals(
    decoder.decode(replyBytes(queuedReply("M1"))),
    "250 2.6.0 Message accepted for delivery as M1\r\n",
  );
  // Same code and text as REPLIES.ok, another object: formatted from its own fields.
  assertEquals(decoder.decode(replyBytes(reply(250, "2.0.0", "OK then"))), "250 2.0.0 OK then\r\n");
  assertEquals(
    decoder.decode(replyBytes({ code: 250, lines: ["mx.test", "PIPELINING"] })),
    "250-mx.test\r\n250 PIPELINING\r\n",
  );
});
