/**
 * Past the AUTH cap an exchange is answered `454 4.7.0` whatever the password (SECURITY.md),
 * so the password is not checked: scrypt (PLAIN, LOGIN) costs the server tens of milliseconds
 * of CPU per try, which an attacker already capped spent for nothing. The owner at an address
 * where the account succeeded before is still checked (and let in), and so is an account below
 * its cap. Here: the scrypt hash is read only when scrypt runs (past the cap the CRAM-MD5
 * midstates tell a right password from a wrong one: auth_cap_right_password_test.ts).
 */
import { equal, match } from "node:assert/strict";
import type { CredentialStore } from "../../src/auth/store.ts";
import { AuthThrottle } from "../../src/auth/throttle.ts";
import { withStore } from "../auth/_fixtures.ts";
import { authPlain, submissionAuth } from "./_auth_exchange.ts";

/** The store, counting the reads of a scrypt hash (each scrypt check makes one). */
function counting(store: CredentialStore): { store: CredentialStore; lookups: () => number } {
  let n = 0;
  const spy = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "getVerifiers") {
        return (user: string) => {
          const found = target.getVerifiers(user);
          if (found === undefined) return undefined;
          return new Proxy(found, {
            get(v, key, r) {
              if (key === "passwordHash") n++;
              return Reflect.get(v, key, r);
            },
          });
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { store: spy, lookups: () => n };
}

/** One `AUTH PLAIN <initial response>` as `user` from `from`; the final reply's text. */
function plain(
  store: CredentialStore,
  throttle: AuthThrottle,
  from: string,
  user: string,
  password: string,
): Promise<string> {
  return authPlain(submissionAuth(store, throttle, from), user, password);
}

Deno.test("submission: past the AUTH cap a PLAIN password is not checked (454 anyway)", async () => {
  await withStore(async (real) => {
    await real.addUser("alice", "correct horse", ["example.org"]);
    await real.addUser("bob", "battery staple", ["example.net"]);
    const { store, lookups } = counting(real);
    const throttle = new AuthThrottle({ baseDelayMs: 1, maxDelayMs: 1, accountCapFailures: 3 });
    // Below the cap: checked, and the owner gets in (her address is known from now on).
    match(await plain(store, throttle, "192.0.2.9", "alice", "correct horse"), /^235 /);
    equal(lookups(), 1);
    for (const from of ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) {
      throttle.recordFailure(from, "alice");
    }
    // Capped: 454 for a guess and for the right password, neither checked by scrypt.
    match(await plain(store, throttle, "203.0.113.5", "alice", "guess"), /^454 4\.7\.0 /);
    match(await plain(store, throttle, "203.0.113.6", "alice", "correct horse"), /^454 4\.7\.0 /);
    equal(lookups(), 1, "a capped exchange checked the password");
    // The owner at her known address is still checked, and let in.
    match(await plain(store, throttle, "192.0.2.9", "alice", "correct horse"), /^235 /);
    equal(lookups(), 2);
    // Another account, below its cap, is checked as before (535 for a wrong password).
    match(await plain(store, throttle, "203.0.113.5", "bob", "guess"), /^535 5\.7\.8 /);
    equal(lookups(), 3);
  });
});
