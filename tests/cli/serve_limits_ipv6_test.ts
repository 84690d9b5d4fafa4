/**
 * `smtp.max_connections_per_ip` on IPv6: one subscriber holds a whole /64 (the AUTH throttle
 * groups addresses by their /64 for that reason, src/auth/throttle.ts ipKey), so counting
 * each address alone let one host take every slot of the MX by rotating its source address.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { ConnectionLimiter } from "../../src/cli/_serve_limits.ts";
import type { Admission } from "../../src/cli/_serve_limits.ts";

const refusal = (a: Admission) => a.ok ? "admitted" : a.refusal;

Deno.test("ConnectionLimiter counts the addresses of one IPv6 /64 together", () => {
  const limiter = new ConnectionLimiter({ maxTotal: 100, maxPerIp: 2 });
  assertEquals(refusal(limiter.tryAcquire("2001:db8:1:2::10")), "admitted");
  assertEquals(refusal(limiter.tryAcquire("2001:db8:1:2::11")), "admitted");
  assertEquals(refusal(limiter.tryAcquire("2001:db8:1:2:ffff::12")), "perIp");
  // Another /64 is another subscriber.
  assertEquals(refusal(limiter.tryAcquire("2001:db8:1:3::10")), "admitted");
});
