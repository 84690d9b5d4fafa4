/**
 * The AUTH account cap on the submission port, for SCRAM-SHA-256 (SECURITY.md: past the cap
 * `454 4.7.0` whatever the password). SCRAM's server-final `334 v=…` proves the password right,
 * so it must wait for the throttle's delay and verdict like the final reply: it was sent at
 * once, before the throttle judged, so under the cap a right guess was told apart from the
 * wrong ones (454). Same as tests/odmr/auth_throttle_test.ts "SCRAM-SHA-256" on the ODMR port.
 */
import { equal, match, ok } from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createSaslClient } from "../../src/auth/sasl_client.ts";
import type { CredentialStore } from "../../src/auth/store.ts";
import { AuthThrottle } from "../../src/auth/throttle.ts";
import { withStore } from "../auth/_fixtures.ts";
import { startReady } from "../smtp/_session.ts";
import { submissionAuth } from "./_auth_exchange.ts";

const b64 = (b: Uint8Array | string) => Buffer.from(b).toString("base64");

/** One submission session from `from`: SCRAM as alice; the replies after the client-final. */
async function scram(
  store: CredentialStore,
  throttle: AuthThrottle,
  from: string,
  password: string,
): Promise<string[]> {
  const s = await startReady({ options: { auth: submissionAuth(store, throttle, from) } });
  try {
    const client = createSaslClient("SCRAM-SHA-256", { user: "alice", password });
    const serverFirst = await s.client.command(
      `AUTH SCRAM-SHA-256 ${b64(client.initialResponse()!)}`,
    );
    match(serverFirst, /^334 /);
    const final = await client.next(Buffer.from(serverFirst.slice(4), "base64"));
    const reply = await s.client.command(b64(final));
    if (!reply.startsWith("334 ")) return [reply];
    // The server-final: check it, answer empty, read the final reply.
    const serverFinal = Buffer.from(reply.slice(4), "base64");
    client.verifyFinal(serverFinal);
    return [`334 ${serverFinal.toString().slice(0, 2)}`, await s.client.command("")];
  } finally {
    await s.end();
  }
}

Deno.test("submission: under the account cap a right SCRAM password gets 454 like a wrong one", async () => {
  await withStore(async (store) => {
    await store.addUser("alice", "correct horse", ["example.org"]);
    const throttle = new AuthThrottle({ baseDelayMs: 1, maxDelayMs: 1, accountCapFailures: 3 });
    // Uncapped, the right password gets the server-final, then 235.
    const fine = await scram(store, throttle, "192.0.2.9", "correct horse");
    equal(fine[0], "334 v=");
    match(fine[1] ?? "", /^235 2\.7\.0 /);
    for (const from of ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) {
      match((await scram(store, throttle, from, "guess"))[0] ?? "", /^(535 5\.7\.8|454 4\.7\.0) /);
    }
    match((await scram(store, throttle, "203.0.113.5", "guess"))[0] ?? "", /^454 4\.7\.0 /);
    const right = await scram(store, throttle, "203.0.113.6", "correct horse");
    ok(right.length === 1 && /^454 4\.7\.0 /.test(right[0] ?? ""), `capped, got ${right}`);
    // The owner at the address where the account succeeded before still gets in.
    const home = await scram(store, throttle, "192.0.2.9", "correct horse");
    match(home[1] ?? "", /^235 /);
  });
});
