import { deepStrictEqual as assertEquals, equal } from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import {
  cramContextFromPassword,
  cramDigest,
  cramResponse,
  formatCramVerifier,
  parseCramVerifier,
} from "../../src/auth/cram_md5.ts";

const enc = new TextEncoder();
const CHALLENGE = enc.encode("<1896.697170952@postoffice.reston.mci.net>");

Deno.test("formatCramVerifier() reproduces the Dovecot value for tanstaaftanstaaf", () => {
  assertEquals(
    formatCramVerifier(cramContextFromPassword("tanstaaftanstaaf")),
    "{CRAM-MD5}d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116b",
  );
});

Deno.test("cramDigest() reproduces the RFC 2195 digest from the stored verifier", () => {
  const ctx = parseCramVerifier(
    "{CRAM-MD5}d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116b",
  );
  if (ctx === undefined) throw new Error("verifier did not parse");
  equal(cramDigest(ctx, CHALLENGE), "b913a602c7eda7a495b4e6e7334d3890");
});

Deno.test("cramResponse() builds the RFC 2195 client answer", () => {
  const answer = cramResponse("tim", "tanstaaftanstaaf", CHALLENGE);
  equal(btoa(String.fromCharCode(...answer)), "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
});

Deno.test("cramDigest() equals node:crypto HMAC-MD5 for short, 64-byte and long passwords", () => {
  for (const length of [0, 1, 63, 64, 65, 200]) {
    const password = "p".repeat(length) + (length > 0 ? "ü" : "");
    const challenge = new Uint8Array(randomBytes(70));
    const want = createHmac("md5", enc.encode(password)).update(challenge).digest("hex");
    equal(cramDigest(cramContextFromPassword(password), challenge), want, `length ${length}`);
  }
});

Deno.test("parseCramVerifier() refuses malformed stored values", () => {
  equal(parseCramVerifier("{CRAM-MD5}abc"), undefined);
  equal(parseCramVerifier("{CRAM-MD5}" + "zz".repeat(32)), undefined);
});
