import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { formatReply, reply } from "../../src/wire/reply.ts";
import {
  ehloReply,
  greetingReply,
  heloReply,
  queuedReply,
  REPLIES,
  replyBytes,
} from "../../src/wire/replies.ts";

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

Deno.test("greeting and EHLO replies: one object per configured text, its bytes encoded once (#13)", () => {
  const ehlo = ehloReply("mx.test", ["PIPELINING", "SIZE 1000"]);
  assert(ehlo === ehloReply("mx.test", ["PIPELINING", "SIZE 1000"]), "the same object again");
  assert(replyBytes(ehlo) === replyBytes(ehlo), "the same bytes again");
  assertEquals(
    decoder.decode(replyBytes(ehlo)),
    "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
  );
  // Another configuration (STARTTLS offered) is another reply.
  const withTls = ehloReply("mx.test", ["PIPELINING", "SIZE 1000", "STARTTLS"]);
  assertEquals(decoder.decode(replyBytes(withTls)).split("\r\n").length, 5);
  assertEquals(decoder.decode(replyBytes(heloReply("mx.test"))), "250 mx.test\r\n");
  // Found by comparing code and lines: one line differing (another size) is another reply.
  assertEquals(
    decoder.decode(replyBytes(ehloReply("mx.test", ["PIPELINING", "SIZE 2000"]))),
    "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 2000\r\n",
  );
  assertEquals(decoder.decode(replyBytes(greetingReply("mx.test"))), "220 mx.test\r\n");
  // Past the bound (many distinct texts), each is still its own text.
  for (let i = 0; i < 200; i++) {
    assertEquals(decoder.decode(replyBytes(greetingReply(`mx${i} ESMTP`))), `220 mx${i} ESMTP\r\n`);
  }
});
