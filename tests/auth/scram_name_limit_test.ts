/**
 * Every mechanism bounds the user name it hands on: PLAIN, LOGIN (255 octets) and CRAM-MD5
 * (255 characters) refuse a longer one as malformed. The name a failure carries becomes a key
 * of the AUTH throttle's per-account map (10,000 entries, no bound on a key) and a field of the
 * `auth_failed` log line, so SCRAM-SHA-256 must bound it too, after SASLprep: NFKC maps one
 * U+FDFA (3 octets) to 18 characters, so a 9 KB client-first within the 12288-octet AUTH line
 * became a 54,000-character name. Failures are recorded before the reply is held, from any
 * address, so 10,000 of them (the map's bound; the ODMR port evicts unauthenticated
 * connections for newcomers) kept about 1.1 GB: `AuthThrottle.recordFailure` with 10,000 such
 * names grew a Deno process's RSS by 1161 MB (measured in review r2). Each also wrote a
 * ~100 KB `auth_failed` line.
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { createSaslServer, type SaslStep } from "../../src/auth/sasl_server.ts";
import { withStore } from "./_fixtures.ts";

const enc = new TextEncoder();

async function clientFirst(name: string): Promise<SaslStep> {
  let step: SaslStep = { kind: "failure", reason: "malformed" };
  await withStore(async (store) => {
    const server = createSaslServer("SCRAM-SHA-256", { store, hostname: "relay.example.net" });
    step = await server.start(enc.encode(`n,,n=${name},r=clientnonce`));
    if (step.kind !== "challenge") return;
    // A wrong proof for the nonce the server chose: a failure that names the user.
    const nonce = new TextDecoder().decode(step.data).split(",")[0]?.slice(2) ?? "";
    step = await server.next(enc.encode(`c=biws,r=${nonce},p=${btoa("x".repeat(32))}`));
  });
  return step;
}

Deno.test("SCRAM-SHA-256 takes a 255-octet user name, as PLAIN does", async () => {
  const step = await clientFirst("a".repeat(255));
  ok(step.kind === "failure" && step.reason === "credentials" && step.user?.length === 255);
});

Deno.test("SCRAM-SHA-256 refuses a user name over 255 octets as malformed, as PLAIN does", async () => {
  assertEquals(await clientFirst("a".repeat(256)), { kind: "failure", reason: "malformed" });
});

Deno.test("SCRAM-SHA-256 refuses a user name that SASLprep grows past 255 octets", async () => {
  // 3000 × U+FDFA: 9000 octets sent, 54,000 characters after NFKC.
  const step = await clientFirst("\uFDFA".repeat(3000));
  const user = step.kind === "failure" ? step.user ?? "" : "";
  ok(user.length <= 255, `a failure naming a ${user.length}-character user`);
});

/** The server's step for a client-first with authorization identity `authzid` for user "a"×255. */
async function withAuthzid(authzid: string): Promise<SaslStep> {
  let step: SaslStep = { kind: "failure", reason: "malformed" };
  await withStore(async (store) => {
    const server = createSaslServer("SCRAM-SHA-256", { store, hostname: "relay.example.net" });
    step = await server.start(enc.encode(`n,a=${authzid},n=${"a".repeat(255)},r=clientnonce`));
  });
  return step;
}

Deno.test("SCRAM-SHA-256 bounds the authorization identity (a=) at 255 octets, as PLAIN does", async () => {
  // Equal to the user (255 octets): the exchange goes on.
  assertEquals((await withAuthzid("a".repeat(255))).kind, "challenge");
  // 256 octets (128 × "é"): malformed, like PLAIN's authzid over 255 octets, whatever the user.
  assertEquals(await withAuthzid("é".repeat(128)), { kind: "failure", reason: "malformed" });
  assertEquals(await withAuthzid("a".repeat(256)), { kind: "failure", reason: "malformed" });
});
