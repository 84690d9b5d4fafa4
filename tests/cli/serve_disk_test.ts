// /healthz on a full disk (src/cli/_serve_disk.ts): a refusal for lack of space makes serve
// unhealthy until a COMMIT stores messages again (a settlement's does not say there is room for
// mail) or FULL_HOLD_MS pass without another refusal (review wt17-rev1).
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { DiskFullness, FULL_HOLD_MS } from "../../src/cli/_serve_disk.ts";

Deno.test("DiskFullness: unhealthy from a refusal until messages are stored again (wt17-rev1)", () => {
  let now = 1_000_000;
  const disk = new DiskFullness(() => now);
  assertEquals(disk.reason(), undefined);
  disk.refused();
  assertMatch(disk.reason() ?? "", /^disk full: messages refused with 452 4\.3\.1 since /);
  disk.committed("normal");
  assertMatch(disk.reason() ?? "", /^disk full/);
  disk.committed("full");
  assertEquals(disk.reason(), undefined);
  disk.refused();
  now += FULL_HOLD_MS - 1;
  assertMatch(disk.reason() ?? "", /^disk full/, "a minute after the last refusal, not the first");
  disk.refused();
  now += FULL_HOLD_MS - 1;
  assertMatch(disk.reason() ?? "", /^disk full/);
  now += 1;
  assertEquals(disk.reason(), undefined, "no refusal for FULL_HOLD_MS");
});

Deno.test("DiskFullness: unhealthy while new mail waits for room (the spent reserve), refused or not (session 18)", () => {
  let waits = true;
  const disk = new DiskFullness(() => 1_000_000, () => waits);
  assertMatch(disk.reason() ?? "", /^disk full: the space reserve is spent/);
  waits = false;
  assertEquals(disk.reason(), undefined);
});
