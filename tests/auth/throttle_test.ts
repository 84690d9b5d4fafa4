import { deepEqual, equal } from "node:assert/strict";
import { AuthThrottle, ipKey } from "../../src/auth/throttle.ts";

function fakeClock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

Deno.test("AuthThrottle.delayMsFor() grows 0, 1s, 2s, 4s, 8s and caps at 10s", () => {
  const clock = fakeClock();
  const throttle = new AuthThrottle({ now: clock.now });
  const seen: number[] = [throttle.delayMsFor("192.0.2.1", "alice")];
  for (let i = 0; i < 6; i++) {
    throttle.recordFailure("192.0.2.1", "alice");
    seen.push(throttle.delayMsFor("192.0.2.1", "alice"));
  }
  equal(seen.join(","), "0,1000,2000,4000,8000,10000,10000");
});

Deno.test("AuthThrottle counts per user across IPs and per IP across users", () => {
  const clock = fakeClock();
  const throttle = new AuthThrottle({ now: clock.now });
  throttle.recordFailure("192.0.2.1", "alice");
  throttle.recordFailure("192.0.2.2", "alice");
  equal(throttle.delayMsFor("192.0.2.3", "alice"), 2000, "user counted across IPs");
  equal(throttle.delayMsFor("192.0.2.3", "bob"), 0);
  throttle.recordFailure("192.0.2.9", "x1");
  throttle.recordFailure("192.0.2.9", "x2");
  throttle.recordFailure("192.0.2.9", "x3");
  equal(throttle.delayMsFor("192.0.2.9", "x4"), 4000, "IP counted across users");
});

Deno.test("AuthThrottle forgets one failure per leak interval", () => {
  const clock = fakeClock();
  const throttle = new AuthThrottle({ now: clock.now, leakIntervalMs: 60_000 });
  for (let i = 0; i < 3; i++) throttle.recordFailure("192.0.2.1");
  equal(throttle.delayMsFor("192.0.2.1"), 4000);
  clock.advance(60_000);
  equal(throttle.delayMsFor("192.0.2.1"), 2000);
  clock.advance(120_000);
  equal(throttle.delayMsFor("192.0.2.1"), 0);
  equal(throttle.size.ips, 0, "an empty bucket is dropped");
});

Deno.test("(#10) AuthThrottle.judge(): the address cap refuses from N failures on, not at N-1", () => {
  const clock = fakeClock();
  const throttle = new AuthThrottle({ now: clock.now, ipCapFailures: 5 });
  for (let i = 0; i < 4; i++) throttle.recordFailure("192.0.2.1", `u${i}`);
  const at = (ip: string, isSuccess: boolean) =>
    throttle.judge({ ip, user: "carol", isSuccess }).isRefused;
  deepEqual([at("192.0.2.1", true), at("192.0.2.1", false)], [false, false]);
  throttle.recordFailure("192.0.2.1", "u4");
  deepEqual([at("192.0.2.1", true), at("192.0.2.1", false)], [true, true]);
  equal(at("192.0.2.2", true), false, "other addresses are not capped");
  clock.advance(60_000);
  equal(at("192.0.2.1", true), false, "uncapped once one failure leaked away");
});

Deno.test("(#10) AuthThrottle.judge(): the owner succeeding from a known address passes any cap, late", () => {
  const clock = fakeClock();
  const throttle = new AuthThrottle({ now: clock.now, ipCapFailures: 3, accountCapFailures: 3 });
  throttle.recordSuccess("192.0.2.1", "alice");
  // A neighbour behind the same address, and many addresses against alice's account.
  for (let i = 0; i < 3; i++) throttle.recordFailure("192.0.2.1", `guess${i}`);
  for (let i = 0; i < 3; i++) throttle.recordFailure(`198.51.100.${i}`, "alice");
  deepEqual(
    throttle.judge({ ip: "192.0.2.1", user: "alice", isSuccess: true }),
    { delayMs: 4000, isRefused: false },
    "her usual address: answered after the delay",
  );
  equal(
    throttle.judge({ ip: "192.0.2.1", user: "alice", isSuccess: false }).isRefused,
    true,
    "a wrong password there reveals nothing either",
  );
  equal(
    throttle.judge({ ip: "203.0.113.9", user: "alice", isSuccess: true }).isRefused,
    true,
    "the account cap holds against an address alice never used",
  );
  equal(throttle.judge({ ip: "203.0.113.9", user: "bob", isSuccess: true }).isRefused, false);
  clock.advance(31 * 86_400_000);
  equal(
    throttle.judge({ ip: "192.0.2.1", user: "alice", isSuccess: true }).isRefused,
    false,
    "failures leaked away meanwhile",
  );
});

Deno.test("(#10) AuthThrottle: the account cap counts failures from every address, at N not N-1", () => {
  const clock = fakeClock();
  const throttle = new AuthThrottle({ now: clock.now, accountCapFailures: 4 });
  for (let i = 0; i < 3; i++) throttle.recordFailure(`198.51.100.${i}`, "alice");
  const refused = () =>
    throttle.judge({ ip: "203.0.113.1", user: "alice", isSuccess: false }).isRefused;
  equal(refused(), false);
  throttle.recordFailure("198.51.100.9", "alice");
  equal(refused(), true);
});

Deno.test("(#10) AuthThrottle.recordSuccess() forgives nothing: the delay stays until failures leak", () => {
  const clock = fakeClock();
  const throttle = new AuthThrottle({ now: clock.now });
  throttle.recordFailure("192.0.2.1", "alice");
  throttle.recordFailure("192.0.2.1", "alice");
  throttle.recordSuccess("192.0.2.1", "alice");
  equal(throttle.delayMsFor("192.0.2.1", "alice"), 2000);
  clock.advance(120_000);
  equal(throttle.delayMsFor("192.0.2.1", "alice"), 0);
});

Deno.test("AuthThrottle keeps at most maxEntries per map, dropping the oldest", () => {
  const clock = fakeClock();
  const throttle = new AuthThrottle({ now: clock.now, maxEntries: 3 });
  for (let i = 1; i <= 5; i++) throttle.recordFailure(`192.0.2.${i}`, `user${i}`);
  equal(throttle.size.ips, 3);
  equal(throttle.size.users, 3);
  equal(throttle.delayMsFor("192.0.2.1"), 0, "oldest dropped");
  equal(throttle.delayMsFor("192.0.2.5"), 1000, "newest kept");
});

Deno.test("ipKey() groups IPv6 by /64 and unwraps IPv4-mapped addresses", async (t) => {
  const rows = [
    { input: "192.0.2.1", want: "192.0.2.1" },
    { input: "::ffff:192.0.2.1", want: "192.0.2.1" },
    { input: "2001:db8:1:2:3:4:5:6", want: "2001:db8:1:2::/64" },
    { input: "2001:DB8:1:2::9", want: "2001:db8:1:2::/64" },
    { input: "2001:db8::1", want: "2001:db8:0:0::/64" },
    { input: "fe80::1%eth0", want: "fe80:0:0:0::/64" },
    { input: "::1", want: "0:0:0:0::/64" },
  ];
  for (const row of rows) {
    await t.step(row.input, () => equal(ipKey(row.input), row.want));
  }
});

Deno.test("AuthThrottle does not share one bucket among failures without a user name", () => {
  const clock = fakeClock();
  const throttle = new AuthThrottle({ now: clock.now });
  throttle.recordFailure("192.0.2.1", "");
  throttle.recordFailure("192.0.2.2", "");
  equal(throttle.delayMsFor("192.0.2.3", ""), 0);
  equal(throttle.size.users, 0);
});
