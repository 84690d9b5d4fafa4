import { equal, match, ok } from "node:assert/strict";
import { hashPassword, parsePasswordHash, verifyPassword } from "../../src/auth/password_hash.ts";

const FAST = { params: { logN: 10, r: 8, p: 1 } };

Deno.test("verifyPassword() accepts the hashed password and refuses another", async () => {
  const stored = await hashPassword("correct horse", FAST);
  match(stored, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  ok(!stored.includes("correct horse"));
  equal(await verifyPassword("correct horse", stored), true);
  equal(await verifyPassword("correct horsf", stored), false);
  equal(await verifyPassword("", stored), false);
});

Deno.test("hashPassword() salts: the same password hashes differently twice", async () => {
  const a = await hashPassword("pw", FAST);
  const b = await hashPassword("pw", FAST);
  ok(a !== b);
});

Deno.test("hashPassword() uses N=16384, r=8, p=1 by default", async () => {
  const stored = await hashPassword("pw");
  equal(parsePasswordHash(stored)?.params.logN, 14);
  equal(await verifyPassword("pw", stored), true);
});

Deno.test("verifyPassword() returns false for malformed stored values", async () => {
  equal(await verifyPassword("pw", "plain"), false);
  equal(await verifyPassword("pw", "$scrypt$ln=40,r=8,p=1$AAAA$AAAA"), false);
});
