/**
 * `fetch` without `--once` after failures (README "The customer: fetch"): 15-30 s after the
 * first (30 s, of which a random half), twice as long after each further one, at most 15-30
 * minutes.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { backoffDelayMs } from "../../src/cli/fetch.ts";

Deno.test("fetch's backoff: 15-30 s after one failure, doubling, at most 15-30 minutes", () => {
  const bounds = (failures: number) => [
    backoffDelayMs(failures, () => 0),
    backoffDelayMs(failures, () => 1),
  ];
  assertEquals(bounds(1), [15_000, 30_000]);
  assertEquals(bounds(2), [30_000, 60_000]);
  assertEquals(bounds(6), [480_000, 960_000]);
  assertEquals(bounds(7), [900_000, 1_800_000]);
  assertEquals(bounds(100), [900_000, 1_800_000]);
});
