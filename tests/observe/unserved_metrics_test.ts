import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { UnservedMetrics } from "../../src/observe/unserved_metrics.ts";

function memoryState() {
  const kept = new Map<string, number>();
  return {
    kept,
    recordAtrnSuccess(user: string, atMs: number) {
      kept.set(user, atMs);
    },
    lastAtrnSuccesses: () => kept,
  };
}

Deno.test("UnservedMetrics (no `metrics:`) still keeps each user's last successful ATRN (#13)", () => {
  const state = memoryState();
  let now = 1_000;
  const m = new UnservedMetrics({ atrnState: state, now: () => now });
  m.odmr.atrn("alice", "250");
  m.odmr.atrn("bob", "450");
  assertEquals([...state.kept], [], "neither a start of a drain nor a refusal is a collection");
  m.odmr.drainFinished("alice", 3);
  now = 2_000;
  m.odmr.atrn("bob", "453");
  m.odmr.drainFinished("", 0);
  assertEquals([...state.kept], [["alice", 1_000], ["bob", 2_000]]);
});

Deno.test("UnservedMetrics: a failing state write is logged, never thrown (#13)", () => {
  const m = new UnservedMetrics({
    atrnState: {
      recordAtrnSuccess() {
        throw new Error("disk full");
      },
      lastAtrnSuccesses: () => new Map(),
    },
  });
  m.odmr.drainFinished("alice", 1);
});
