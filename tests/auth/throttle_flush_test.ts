/**
 * The account cap ("many addresses together cannot guess one password faster than the cap",
 * SECURITY.md) must survive junk: failures under made-up user names, which every address can
 * produce (a capped address gets `454`, and its failures are still recorded), push the
 * guessed account's bucket out of the least-recently-used map, and its cap is gone. At the
 * defaults (10,000 entries, 200 connections per port, each failure's reply held 1-10 s while
 * its connection keeps its slot) a flush takes minutes, against a cap meant to allow one
 * guess per minute per account. Small `maxEntries` here, same logic. A full map now drops an
 * entry below its cap (never a capped one) and a capped address's new names take no entry;
 * each half has its test below, and both maps stay within `maxEntries`.
 */
import { equal } from "node:assert/strict";
import { AuthThrottle } from "../../src/auth/throttle.ts";

Deno.test("AuthThrottle: failures under made-up names do not lift a capped account", () => {
  let t = 1_000_000;
  const throttle = new AuthThrottle({
    now: () => t,
    accountCapFailures: 3,
    ipCapFailures: 3,
    maxEntries: 50,
  });
  for (let i = 0; i < 3; i++) throttle.recordFailure(`198.51.100.${i}`, "alice");
  const aliceRefused = () =>
    throttle.judge({ ip: "203.0.113.7", user: "alice", isSuccess: true }).isRefused;
  equal(aliceRefused(), true, "capped after 3 failures");
  // One capped address sends junk names: every failure is recorded all the same.
  for (let i = 0; i < 60; i++) {
    t += 10;
    throttle.recordFailure("192.0.2.66", `junk${i}`);
  }
  equal(aliceRefused(), true, "alice's failures were forgotten to make room for junk");
});

Deno.test("AuthThrottle: many addresses under their cap cannot push a capped account out", () => {
  let t = 1_000_000;
  const throttle = new AuthThrottle({ now: () => t, accountCapFailures: 3, maxEntries: 50 });
  for (let i = 0; i < 3; i++) throttle.recordFailure(`198.51.100.${i}`, "alice");
  // 200 addresses, one made-up name each: none of them capped, the account map full 4 times.
  for (let i = 0; i < 200; i++) {
    t += 10;
    throttle.recordFailure(`10.0.${i >> 8}.${i & 255}`, `junk${i}`);
  }
  equal(throttle.size.users, 50, "the account map stays at maxEntries");
  equal(throttle.size.ips, 50, "the address map stays at maxEntries");
  equal(throttle.judge({ ip: "203.0.113.7", user: "alice", isSuccess: true }).isRefused, true);
});

Deno.test("AuthThrottle: a capped address's made-up names take no account entries", () => {
  const throttle = new AuthThrottle({ now: () => 1_000_000, ipCapFailures: 3 });
  for (let i = 0; i < 3; i++) throttle.recordFailure("192.0.2.66", `junk${i}`);
  equal(throttle.size.users, 3);
  for (let i = 3; i < 1000; i++) throttle.recordFailure("192.0.2.66", `junk${i}`);
  equal(throttle.size.users, 3, "failures past the address cap made account entries");
  equal(throttle.judge({ ip: "192.0.2.66", user: "junk999", isSuccess: false }).isRefused, true);
});

Deno.test("AuthThrottle: memory stays bounded when every entry is capped", () => {
  let t = 1_000_000;
  const throttle = new AuthThrottle({
    now: () => t,
    accountCapFailures: 2,
    ipCapFailures: 2,
    maxEntries: 20,
  });
  // 20 capped accounts from 20 capped addresses fill both maps.
  for (let i = 0; i < 20; i++) {
    for (let k = 0; k < 2; k++) throttle.recordFailure(`10.1.0.${i}`, `user${i}`);
  }
  for (let i = 0; i < 500; i++) {
    t += 10;
    throttle.recordFailure(`10.2.${i >> 8}.${i & 255}`, `new${i}`);
  }
  equal(throttle.size.users, 20);
  equal(throttle.size.ips, 20);
  for (let i = 0; i < 20; i++) {
    const v = throttle.judge({ ip: "203.0.113.7", user: `user${i}`, isSuccess: true });
    equal(v.isRefused, true, `user${i} lost its cap`);
  }
});
