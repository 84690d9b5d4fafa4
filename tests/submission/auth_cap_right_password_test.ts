/**
 * While an AUTH cap holds, the owner's right password from an address new to the account is
 * answered `454 4.7.0` (SECURITY.md: the cap reveals nothing) but is no failure: it must not
 * prolong the cap it suffers from, nor be logged as a failed login (fail2ban bans on those).
 * A wrong password still counts. Past the cap PLAIN and LOGIN skip scrypt (a capped attacker
 * made the server run it for nothing), so the right password was not known and counted as a
 * failure; the stored CRAM-MD5 midstates (two MD5 blocks) tell it now, and the scrypt hash is
 * still never read past the cap. The failures counted show in the throttle's delay, 2^(n-1) ms.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { AuthThrottle } from "../../src/auth/throttle.ts";
import type { CredentialStore } from "../../src/auth/store.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";
import { withStore } from "../auth/_fixtures.ts";
import { authPlain, submissionAuth } from "./_auth_exchange.ts";

/** `AUTH PLAIN <initial response>` as `user` from `from`; the final reply's text. */
function plain(
  store: CredentialStore,
  throttle: AuthThrottle,
  events: RecordedEvent[],
  from: string,
  user: string,
  password: string,
): Promise<string> {
  return authPlain(submissionAuth(store, throttle, from, recordingLogger(events)), user, password);
}

Deno.test("submission: past the AUTH cap the owner's right password from a new address is no failure", async () => {
  await withStore(async (store) => {
    await store.addUser("alice", "correct horse", ["example.org"]);
    const throttle = new AuthThrottle({
      baseDelayMs: 1,
      maxDelayMs: 1_000_000,
      accountCapFailures: 3,
      leakIntervalMs: 3_600_000,
    });
    /** Outstanding failures of alice's account, from the delay they make (1 ms · 2^(n-1)). */
    const failures = () => Math.log2(throttle.delayMsFor("192.0.2.250", "alice")) + 1;
    for (const from of ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) {
      throttle.recordFailure(from, "alice");
    }
    assertEquals(failures(), 3);
    const events: RecordedEvent[] = [];
    match(
      await plain(store, throttle, events, "203.0.113.6", "alice", "correct horse"),
      /^454 4\.7\.0 /,
    );
    assertEquals(failures(), 3, "the right password counted as a failure");
    assertEquals(events.map((e) => e.event), ["auth_throttled"]);
    match(await plain(store, throttle, events, "203.0.113.6", "alice", "guess"), /^454 4\.7\.0 /);
    assertEquals(failures(), 4, "a wrong password counts");
    assertEquals(events.map((e) => e.event), ["auth_throttled", "auth_failed"]);
  });
});
