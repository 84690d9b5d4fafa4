import { deepStrictEqual as assertEquals, equal, ok } from "node:assert/strict";
import {
  buildServerFirst,
  checkClientFinal,
  checkServerFinal,
  computeClientFinal,
  deriveScramVerifier,
  escapeScramName,
  formatScramVerifier,
  parseClientFinal,
  parseClientFirst,
  parseScramVerifier,
  saslPrep,
  SCRAM_MAX_ITERATIONS,
  type ScramHash,
  unescapeScramName,
} from "../../src/auth/scram.ts";
import { loadNodeCrypto } from "../../src/auth/node_crypto.ts";

// The synchronous computations under test take node:crypto once it is loaded.
await loadNodeCrypto();

const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

interface Vector {
  name: string;
  hash: ScramHash;
  clientFirst: string;
  serverFirst: string;
  clientFinal: string;
  serverFinal: string;
  salt: string;
  storedKey: string;
  serverKey: string;
}

const VECTORS: Vector[] = [
  {
    name: "RFC 7677 SCRAM-SHA-256",
    hash: "sha256",
    clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    serverFirst:
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    clientFinal:
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
    storedKey: "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
    serverKey: "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
  },
  {
    name: "RFC 5802 SCRAM-SHA-1",
    hash: "sha1",
    clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    clientFinal:
      "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    salt: "QSXCR+Q6sek8bf92",
    storedKey: "6dlGYMOdZcOPutkcNY8U2g7vK9Y=",
    serverKey: "D+CSWLOshSulAsxiupA+qs2/fTE=",
  },
];

function nonceOf(message: string): string {
  return /r=([^,]+)/.exec(message)?.[1] ?? "";
}

for (const v of VECTORS) {
  Deno.test(`deriveScramVerifier() reproduces the ${v.name} StoredKey and ServerKey`, async () => {
    const got = await deriveScramVerifier("pencil", {
      salt: unb64(v.salt),
      iterations: 4096,
      hash: v.hash,
    });
    equal(b64(got.storedKey), v.storedKey);
    equal(b64(got.serverKey), v.serverKey);
  });

  Deno.test(`checkClientFinal() accepts the ${v.name} proof and answers its v=`, async () => {
    const verifier = await deriveScramVerifier("pencil", {
      salt: unb64(v.salt),
      iterations: 4096,
      hash: v.hash,
    });
    const first = parseClientFirst(v.clientFirst);
    if (!first.ok) throw new Error(first.reason);
    equal(first.value.user, "user");
    const fullNonce = nonceOf(v.serverFirst);
    equal(buildServerFirst(fullNonce, verifier), v.serverFirst);
    const final = parseClientFinal(v.clientFinal);
    if (!final.ok) throw new Error(final.reason);
    const session = { clientFirst: first.value, serverFirst: v.serverFirst, fullNonce, verifier };
    assertEquals(checkClientFinal(session, final.value, v.hash), {
      ok: true,
      serverFinal: v.serverFinal,
    });
  });

  Deno.test(`computeClientFinal() reproduces the ${v.name} client-final`, async () => {
    const got = await computeClientFinal({
      password: "pencil",
      clientFirstBare: v.clientFirst.slice(3),
      gs2Header: "n,,",
      clientNonce: nonceOf(v.clientFirst),
      serverFirst: v.serverFirst,
      hash: v.hash,
    });
    if (!got.ok) throw new Error(got.reason);
    equal(got.value.clientFinal, v.clientFinal);
    ok(checkServerFinal(v.serverFinal, got.value.expectedServerSignature).ok);
  });
}

Deno.test("checkClientFinal() refuses a tampered proof, nonce or channel binding", async (t) => {
  const v = VECTORS[0] as Vector;
  const verifier = await deriveScramVerifier("pencil", {
    salt: unb64(v.salt),
    iterations: 4096,
  });
  const first = parseClientFirst(v.clientFirst);
  if (!first.ok) throw new Error(first.reason);
  const fullNonce = nonceOf(v.serverFirst);
  const session = { clientFirst: first.value, serverFirst: v.serverFirst, fullNonce, verifier };
  const rows = [
    {
      what: "proof with one bit flipped",
      final: v.clientFinal.replace("p=dHzb", "p=dHzc"),
      reason: "credentials",
    },
    {
      what: "nonce with the server part changed",
      final: v.clientFinal.replace("k0,p=", "k1,p="),
      reason: "malformed",
    },
    {
      what: "nonce that is only the client part",
      final: v.clientFinal.replace("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", ""),
      reason: "malformed",
    },
    { what: "c= for y,,", final: v.clientFinal.replace("c=biws", "c=eSws"), reason: "malformed" },
    {
      what: "proof of the wrong length",
      final: v.clientFinal.replace(/p=.*$/, "p=AAAA"),
      reason: "malformed",
    },
  ];
  for (const row of rows) {
    await t.step(row.what, () => {
      const final = parseClientFinal(row.final);
      if (!final.ok) throw new Error(final.reason);
      assertEquals(checkClientFinal(session, final.value), { ok: false, reason: row.reason });
    });
  }
});

Deno.test("parseClientFirst() handles gs2 flags, authzid and escaped names", async (t) => {
  const rows: { input: string; want: string | { user: string; authzid?: string } }[] = [
    { input: "n,,n=user,r=abc", want: { user: "user" } },
    { input: "y,,n=user,r=abc", want: { user: "user" } },
    { input: "n,a=bob,n=bob,r=abc", want: { user: "bob", authzid: "bob" } },
    { input: "n,,n=a=2Cb=3Dc,r=abc", want: { user: "a,b=c" } },
    { input: "p=tls-exporter,,n=user,r=abc", want: "channel binding not supported" },
    { input: "x,,n=user,r=abc", want: "no gs2-header" },
    { input: "n,,n=us=41er,r=abc", want: "bad user name" },
    { input: "n,,m=ext,n=user,r=abc", want: "mandatory extension" },
    { input: "n,,n=user", want: "no r=" },
    { input: "n,,n=user,r=a b", want: "bad nonce" },
    { input: "n=user,r=abc", want: "no gs2-header" },
  ];
  for (const row of rows) {
    await t.step(row.input, () => {
      const got = parseClientFirst(row.input);
      if (typeof row.want === "string") {
        assertEquals(got, { ok: false, reason: row.want });
      } else {
        ok(got.ok);
        equal(got.value.user, row.want.user);
        equal(got.value.authzid, row.want.authzid);
      }
    });
  }
});

Deno.test("escapeScramName() and unescapeScramName() round-trip = and ,", () => {
  equal(escapeScramName("a,b=c"), "a=2Cb=3Dc");
  equal(unescapeScramName("a=2Cb=3Dc"), "a,b=c");
  equal(unescapeScramName("a=2c"), undefined);
});

Deno.test("saslPrep() maps spaces, drops soft hyphens and refuses control characters", () => {
  equal(saslPrep("I\u00ADX"), "IX");
  equal(saslPrep("user"), "user");
  equal(saslPrep("USER"), "USER");
  equal(saslPrep("\u00AA"), "a");
  equal(saslPrep("\u2168"), "IX");
  equal(saslPrep("a\u00A0b"), "a b");
  equal(saslPrep("\u0007"), undefined);
  equal(saslPrep(""), undefined);
});

Deno.test("formatScramVerifier() output parses back to the same verifier", async () => {
  const v = await deriveScramVerifier("secret", { iterations: 4096 });
  assertEquals(parseScramVerifier(formatScramVerifier(v)), v);
  equal(parseScramVerifier("SCRAM-SHA-256$100:AAAA$AAAA:AAAA"), undefined);
});

Deno.test("computeClientFinal() refuses a server nonce that does not extend the client's", async () => {
  const got = await computeClientFinal({
    password: "pencil",
    clientFirstBare: "n=user,r=abc",
    gs2Header: "n,,",
    clientNonce: "abc",
    serverFirst: "r=xyz123,s=QSXCR+Q6sek8bf92,i=4096",
  });
  equal(got.ok, false);
});

Deno.test("computeClientFinal() refuses an iteration count below 4096", async () => {
  const got = await computeClientFinal({
    password: "pencil",
    clientFirstBare: "n=user,r=abc",
    gs2Header: "n,,",
    clientNonce: "abc",
    serverFirst: "r=abc123,s=QSXCR+Q6sek8bf92,i=1",
  });
  equal(got.ok, false);
});

Deno.test("computeClientFinal() computes SCRAM_MAX_ITERATIONS and refuses one more (a stalling server)", async () => {
  const at = (i: number) =>
    computeClientFinal({
      password: "pencil",
      clientFirstBare: "n=user,r=abc",
      gs2Header: "n,,",
      clientNonce: "abc",
      serverFirst: `r=abc123,s=QSXCR+Q6sek8bf92,i=${i}`,
    });
  equal((await at(SCRAM_MAX_ITERATIONS)).ok, true);
  const over = await at(SCRAM_MAX_ITERATIONS + 1);
  equal(over.ok ? "" : over.reason, `iteration count ${SCRAM_MAX_ITERATIONS + 1} is too high`);
});
