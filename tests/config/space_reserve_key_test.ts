/**
 * `queue.space_reserve` (session 18): a size (binary units, as every size key), `0` for none,
 * anything else refused with the key (src/queue/space_reserve.ts).
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { ConfigError } from "../../src/config/load.ts";
import { parseConfig } from "../../src/config/parse.ts";

const BASE = { source: "/etc/odmr.yaml", baseDir: "/etc", systemHostname: () => "box.local" };

function reserveOf(value: string): number | string {
  try {
    return parseConfig(`queue: {space_reserve: ${value}}`, BASE).queue.spaceReserveBytes;
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
}

Deno.test("queue.space_reserve: a size, 0 for none, else refused with the key (session 18)", () => {
  assertEquals(reserveOf("32MB"), 32 * 1024 * 1024);
  assertEquals(reserveOf("512KB"), 512 * 1024);
  assertEquals(reserveOf("0"), 0);
  assertEquals(reserveOf('"0"'), 0);
  assertMatch(String(reserveOf("-1")), /queue\.space_reserve must be a size/);
  assertMatch(String(reserveOf("lots")), /queue\.space_reserve must be a size/);
});
