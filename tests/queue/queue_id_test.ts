/**
 * Queue ids (src/queue/id.ts): 10 characters of time then 8 random ones, Crockford base32, so
 * that ids sort by arrival; random characters drawn in bulk stay distinct from id to id.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { isQueueId, newQueueId } from "../../src/queue/id.ts";

const SHAPE = /^[0-9A-HJKMNP-TV-Z]{18}$/;

Deno.test("a queue id is 18 Crockford base32 characters, its first 10 the time", () => {
  const id = newQueueId(Date.UTC(2026, 10, 29, 13, 0, 0));
  assert(SHAPE.test(id), id);
  assert(isQueueId(id));
  // 1795957200000 ms in base32, Crockford's digits.
  assertEquals(id.slice(0, 10), "01M8KP8540");
});

Deno.test("queue ids sort by their time, and ids of one millisecond share its characters", () => {
  const a = newQueueId(1_000);
  const b = newQueueId(1_000);
  const c = newQueueId(1_001);
  const d = newQueueId(32 ** 5);
  assertEquals(a.slice(0, 10), b.slice(0, 10));
  assert(a.slice(0, 10) < c.slice(0, 10));
  assert([d, c, a].sort()[2] === d);
  assertEquals(newQueueId(-5).slice(0, 10), "0000000000");
});

Deno.test("queue ids of the same millisecond differ, past many draws of random bytes", () => {
  const ids = new Set<string>();
  // Several times the ids one draw of random bytes serves.
  for (let i = 0; i < 5000; i++) {
    const id = newQueueId(42);
    assert(SHAPE.test(id), id);
    ids.add(id);
  }
  assertEquals(ids.size, 5000);
  // Every random character is used (bytes mod 32): no character stuck at one value.
  for (let at = 10; at < 18; at++) {
    const seen = new Set([...ids].map((id) => id[at]));
    assertEquals(seen.size, 32);
  }
});
