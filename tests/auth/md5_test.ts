import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Md5, md5, MD5_INITIAL_STATE, md5Compress } from "../../src/auth/md5.ts";

const enc = new TextEncoder();
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("md5() reproduces the RFC 1321 appendix A.5 test suite", async (t) => {
  const rows: { input: string; want: string }[] = [
    { input: "", want: "d41d8cd98f00b204e9800998ecf8427e" },
    { input: "a", want: "0cc175b9c0f1b6a831c399e269772661" },
    { input: "abc", want: "900150983cd24fb0d6963f7d28e17f72" },
    { input: "message digest", want: "f96b697d7cb7938d525a2f31aaf161d0" },
    { input: "abcdefghijklmnopqrstuvwxyz", want: "c3fcd3d76192e4007dfb496cca67e13b" },
    {
      input: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
      want: "d174ab98d277d9f5a5611c2c9f419d9f",
    },
    {
      input: "1234567890".repeat(8),
      want: "57edf4a22be3c955ac49da2e2107b67a",
    },
  ];
  for (const row of rows) {
    await t.step(JSON.stringify(row.input), () => {
      assertEquals(hex(md5(enc.encode(row.input))), row.want);
    });
  }
});

Deno.test("md5() agrees with node:crypto on random inputs of every length up to 300", () => {
  for (let n = 0; n <= 300; n++) {
    const data = new Uint8Array(randomBytes(n));
    assertEquals(hex(md5(data)), createHash("md5").update(data).digest("hex"), `length ${n}`);
  }
});

Deno.test("Md5.update() gives the same digest whatever the chunking", () => {
  const data = new Uint8Array(randomBytes(1000));
  const want = createHash("md5").update(data).digest("hex");
  for (const size of [1, 3, 63, 64, 65, 200]) {
    const h = new Md5();
    for (let i = 0; i < data.length; i += size) h.update(data.subarray(i, i + size));
    assertEquals(hex(h.digest()), want, `chunk ${size}`);
  }
});

Deno.test("Md5 resumed from a saved midstate equals hashing the whole input", () => {
  const first = new Uint8Array(randomBytes(64));
  const rest = new Uint8Array(randomBytes(100));
  const mid = md5Compress(MD5_INITIAL_STATE, first);
  const resumed = new Md5(mid, 64).update(rest).digest();
  const whole = createHash("md5").update(first).update(rest).digest("hex");
  assertEquals(hex(resumed), whole);
});
