/**
 * CRAM-MD5 bounds the user name it hands on (a throttle key and an `auth_failed` log field) at
 * 255 octets of UTF-8, like PLAIN, LOGIN and SCRAM-SHA-256 (scram_name_limit_test.ts): it
 * counted 255 UTF-16 code units, so a name of multi-byte characters passed at up to 1020 octets
 * (255 × 4). Over the bound it is refused as malformed, the same step (and so the same `501
 * 5.5.2` reply) SCRAM gives an over-long name.
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { createSaslServer, type SaslStep } from "../../src/auth/sasl_server.ts";
import { withStore } from "./_fixtures.ts";

const enc = new TextEncoder();
const MALFORMED: SaslStep = { kind: "failure", reason: "malformed" };

/** The server's step for a CRAM-MD5 answer naming `name` (with a wrong digest). */
async function answer(name: string): Promise<SaslStep> {
  let step: SaslStep = MALFORMED;
  await withStore(async (store) => {
    const server = createSaslServer("CRAM-MD5", { store, hostname: "relay.example.net" });
    const challenge = await server.start(undefined);
    if (challenge.kind !== "challenge") throw new Error("no challenge");
    step = await server.next(enc.encode(`${name} ${"0".repeat(32)}`));
  });
  return step;
}

/** 255 octets: 85 × "€" (3 octets each); 63 × U+1F600 (4 octets, 2 code units) and "abc". */
const AT_LIMIT = ["a".repeat(255), "€".repeat(85), "\u{1F600}".repeat(63) + "abc"];
/** 256 octets, each 128 or fewer characters. */
const OVER_LIMIT = ["a".repeat(256), "é".repeat(128), "\u{1F600}".repeat(64)];

Deno.test("CRAM-MD5 takes a user name of 255 octets, multi-byte ones too", async () => {
  for (const name of AT_LIMIT) {
    assertEquals(enc.encode(name).length, 255);
    const step = await answer(name);
    ok(
      step.kind === "failure" && step.reason === "credentials" && step.user === name,
      `${JSON.stringify(step).slice(0, 80)} for ${name.length} characters`,
    );
  }
});

Deno.test("CRAM-MD5 refuses a user name over 255 octets as malformed, as SCRAM-SHA-256 does", async () => {
  for (const name of OVER_LIMIT) {
    assertEquals(enc.encode(name).length, 256);
    assertEquals(await answer(name), MALFORMED, `${name.length} characters`);
  }
  // SCRAM-SHA-256's step for an over-long name, for comparison.
  await withStore(async (store) => {
    const scram = createSaslServer("SCRAM-SHA-256", { store, hostname: "relay.example.net" });
    assertEquals(await scram.start(enc.encode(`n,,n=${"é".repeat(128)},r=nonce`)), MALFORMED);
  });
});
