/** The outbound retry schedule: steps, jitter bounds, the cap. */
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { DEFAULT_RETRY_SCHEDULE_MS, retryAt, retryDelayMs } from "../../src/outbound/backoff.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const mid = () => 0.5;

Deno.test("retryDelayMs() follows 1m, 5m, 15m, 30m, 1h, 2h, 4h without jitter at its middle", () => {
  const got = [1, 2, 3, 4, 5, 6, 7].map((n) => retryDelayMs(n, { random: mid }));
  assertEquals(got, [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR]);
  assertEquals(got, [...DEFAULT_RETRY_SCHEDULE_MS]);
});

Deno.test("retryDelayMs() is capped at 4h: the 7th failure and every later one wait the last step", () => {
  for (const n of [7, 8, 9, 50, 1_000_000]) {
    assertEquals(retryDelayMs(n, { random: mid }), 4 * HOUR, `failure ${n}`);
  }
  // The 6th failure is still under the cap (N-1 of the cap at N = 7).
  assertEquals(retryDelayMs(6, { random: mid }), 2 * HOUR);
});

Deno.test("retryDelayMs() jitters by at most ±10%, reaching both ends", () => {
  for (const [n, step] of DEFAULT_RETRY_SCHEDULE_MS.entries()) {
    const low = retryDelayMs(n + 1, { random: () => 0 });
    const high = retryDelayMs(n + 1, { random: () => 0.999_999_999 });
    assertEquals(low, Math.round(step * 0.9), `lowest at failure ${n + 1}`);
    assert(high <= step * 1.1 && high >= step * 1.099, `highest at failure ${n + 1}: ${high}`);
  }
  // Over many draws of the real random source: always within the bounds, and spread out.
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const d = retryDelayMs(9);
    assert(d >= 0.9 * 4 * HOUR && d <= 1.1 * 4 * HOUR, `out of bounds: ${d}`);
    seen.add(d);
  }
  assert(seen.size > 1000, `jitter hardly varies: ${seen.size} distinct values`);
});

Deno.test("retryDelayMs() takes a configured schedule; a zero or negative count is the first step", () => {
  const scheduleMs = [1000, 3000];
  assertEquals(retryDelayMs(1, { scheduleMs, random: mid }), 1000);
  assertEquals(retryDelayMs(2, { scheduleMs, random: mid }), 3000);
  assertEquals(retryDelayMs(3, { scheduleMs, random: mid }), 3000);
  assertEquals(retryDelayMs(0, { scheduleMs, random: mid }), 1000);
  assertEquals(retryDelayMs(-4, { scheduleMs, random: mid }), 1000);
  // Never 0: a recipient is never due again in the same instant it was deferred.
  assertEquals(retryDelayMs(1, { scheduleMs: [0], random: () => 0 }), 1);
  throws(() => retryDelayMs(1, { scheduleMs: [] }), /empty/);
});

Deno.test("retryAt() is now plus the delay", () => {
  assertEquals(retryAt(1_000_000, 2, { random: mid }), 1_000_000 + 5 * MINUTE);
});
