/**
 * The account cap ("many addresses together cannot guess one password faster than the cap",
 * SECURITY.md) must survive junk: failures under made-up user names, which every address can
 * produce (a capped address gets `454`, and its failures are still recorded), push the
 * guessed account's bucket out of the least-recently-used map, and its cap is gone. At the
 * defaults (10,000 entries, 200 connections per port, each failure's reply held 1-10 s while
 * its connection keeps its slot) a flush takes minutes, against a cap meant to allow one
 * guess per minute per account. Small `maxEntries` here, same logic.
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
