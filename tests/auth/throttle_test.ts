import { equal } from "node:assert/strict";
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

Deno.test("AuthThrottle.isBlocked() is true at N failures and false at N-1", () => {
  const clock = fakeClock();
  const throttle = new AuthThrottle({ now: clock.now, blockAfterFailures: 5 });
  for (let i = 0; i < 4; i++) throttle.recordFailure("192.0.2.1", `u${i}`);
  equal(throttle.isBlocked("192.0.2.1"), false);
  throttle.recordFailure("192.0.2.1", "u4");
  equal(throttle.isBlocked("192.0.2.1"), true);
  equal(throttle.isBlocked("192.0.2.2"), false);
  clock.advance(60_000);
  equal(throttle.isBlocked("192.0.2.1"), false, "unblocked once one failure leaked away");
});

Deno.test("AuthThrottle.recordSuccess() clears the IP and the user", () => {
  const clock = fakeClock();
  const throttle = new AuthThrottle({ now: clock.now });
  throttle.recordFailure("192.0.2.1", "alice");
  throttle.recordFailure("192.0.2.1", "alice");
  throttle.recordSuccess("192.0.2.1", "alice");
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
