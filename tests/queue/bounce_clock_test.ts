/**
 * The node's foreign-bounce limit counts its hour on a monotonic clock: a wall clock stepped
 * forward (NTP after a suspend, an operator's `date -s`) must not hand out a fresh allowance of
 * bounces to forged senders (backscatter). (Nor may one stepped back hold the allowance for hours
 * more; no test here can let real time pass for that.)
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { BounceLimiter } from "../../src/queue/bounce.ts";

const HOUR_MS = 3_600_000;

/** Runs `fn` with a wall clock (Date.now) that `step(ms)` moves, then puts the real one back. */
function withSteppableClock(fn: (step: (ms: number) => void) => void): void {
  const real = Date.now;
  let offset = 0;
  Date.now = () => real() + offset;
  try {
    fn((ms) => {
      offset += ms;
    });
  } finally {
    Date.now = real;
  }
}

Deno.test("BounceLimiter: a wall clock stepped forward two hours gives no new allowance", () => {
  withSteppableClock((step) => {
    const limiter = new BounceLimiter(2);
    assert(limiter.tryTake());
    limiter.spend(1);
    assertEquals(limiter.tryTake(), false);
    step(2 * HOUR_MS);
    assertEquals(limiter.available(), 0, "the hour has not passed");
    assertEquals(limiter.tryTake(), false);
  });
});
