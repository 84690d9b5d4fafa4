import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { heloCapabilities, parseEhloReply } from "../../src/wire/ehlo.ts";
import type { Reply } from "../../src/wire/reply.ts";

function ehlo(...lines: string[]): Reply {
  return { code: 250, lines };
}

Deno.test("parseEhloReply() reads every extension the sender cares about", () => {
  const caps = parseEhloReply(ehlo(
    "customer.example greets provider.example",
    "SIZE 10240000",
    "8BITMIME",
    "PIPELINING",
    "SMTPUTF8",
    "CHUNKING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "STARTTLS",
    "AUTH CRAM-MD5 PLAIN",
    "ATRN",
  ));
  assertEquals(caps.domain, "customer.example");
  assert(caps.isExtended);
  assertEquals(caps.size, 10240000);
  assert(caps.eightBitMime && caps.pipelining && caps.smtpUtf8 && caps.chunking && caps.dsn);
  assert(caps.enhancedStatusCodes && caps.startTls && caps.atrn);
  assertEquals(caps.authMechanisms, ["CRAM-MD5", "PLAIN"]);
  assert(!caps.binaryMime);
});

Deno.test("parseEhloReply() handles the odd forms peers send", async (t) => {
  await t.step("keywords are case-insensitive", () => {
    const caps = parseEhloReply(ehlo("x", "pipelining", "8bitmime", "auth login"));
    assert(caps.pipelining && caps.eightBitMime);
    assertEquals(caps.authMechanisms, ["LOGIN"]);
  });
  await t.step("the old AUTH= form is merged with AUTH", () => {
    const caps = parseEhloReply(ehlo("x", "AUTH=LOGIN PLAIN", "AUTH LOGIN CRAM-MD5"));
    assertEquals(caps.authMechanisms, ["LOGIN", "PLAIN", "CRAM-MD5"]);
  });
  await t.step("bare SIZE means no announced limit", () => {
    assertEquals(parseEhloReply(ehlo("x", "SIZE")).size, 0);
    assertEquals(parseEhloReply(ehlo("x", "SIZE 0")).size, 0);
    assertEquals(parseEhloReply(ehlo("x", "SIZE lots")).size, 0);
  });
  await t.step("no SIZE keyword means SIZE is not offered", () => {
    assertEquals(parseEhloReply(ehlo("x", "PIPELINING")).size, undefined);
  });
  await t.step("a one-line reply offers nothing", () => {
    const caps = parseEhloReply(ehlo("mx.example"));
    assert(caps.isExtended && !caps.pipelining && !caps.eightBitMime);
    assertEquals(caps.keywords.size, 0);
  });
  await t.step("malformed keyword lines are skipped, unknown ones kept", () => {
    const caps = parseEhloReply(ehlo("x", "", "-bad", "X-EXPS GSSAPI", "PIPELINING"));
    assert(caps.pipelining);
    assertEquals(caps.keywords.get("X-EXPS"), "GSSAPI");
    assertEquals(caps.keywords.size, 2);
  });
  await t.step("the greeting line is never a keyword", () => {
    const caps = parseEhloReply(ehlo("PIPELINING"));
    assert(!caps.pipelining);
  });
});

Deno.test("heloCapabilities() offers no extension", () => {
  const caps = heloCapabilities({ code: 250, lines: ["mx.example Hello"] });
  assertEquals(caps.domain, "mx.example");
  assert(!caps.isExtended && !caps.pipelining && !caps.eightBitMime && !caps.dsn);
  assertEquals(caps.size, undefined);
});
