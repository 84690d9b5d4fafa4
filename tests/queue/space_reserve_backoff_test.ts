/**
 * (session 19) How often serve tries to put a spent space reserve back. Each try writes the
 * reserve and its margin (16 MiB by default) on the event loop and gives it back when the disk
 * has less than that: measured on a 128 MiB ext4 loop device with 15 MiB free, a failed try took
 * 194 ms (median, up to 682 ms), and mail tried once a second. After each failed try the next
 * now waits twice as long, up to RESTORE_RETRY_MAX_MS; a try that succeeds, and the next time
 * the reserve is given back, start again at RESTORE_RETRY_MS. (Maintenance still tries at each
 * pass.) Room on a small tmpfs, with an injected clock (root: skipped with the reason otherwise).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  RESTORE_RETRY_MAX_MS,
  RESTORE_RETRY_MS,
  SpaceReserve,
} from "../../src/queue/space_reserve.ts";
import { recordingLogger } from "../_helpers/recording_logger.ts";
import { fillUp, mountTmpfs, unmountTmpfs } from "../_helpers/tmpfs.ts";

const NAME = "space reserve backoff";
const BYTES = 1024 * 1024;
const full = () => Object.assign(new Error("database or disk is full"), { errcode: 13 });

/** A write that finds no room, then fits with the reserve's room. */
function spend(reserve: SpaceReserve): void {
  let calls = 0;
  reserve.retry("settlement", () => {
    if (++calls === 1) throw full();
  });
}

Deno.test("SpaceReserve: a failed try to put it back doubles the wait for the next, up to a bound (session 19)", async () => {
  const dir = await mountTmpfs(NAME, "4m");
  if (dir === undefined) return;
  try {
    let now = 1_000_000;
    const reserve = new SpaceReserve(dir, {
      log: recordingLogger([]),
      bytes: BYTES,
      margin: BYTES,
      now: () => now,
    });
    reserve.start();
    assertEquals(reserve.isKept, true);
    fillUp(`${dir}/filler`);
    spend(reserve);
    assertEquals(reserve.isKept, false);
    // Failed tries at +1 s, then +2 s, +4 s … until the bound.
    let wait = RESTORE_RETRY_MS;
    let tries = 0;
    for (; wait < RESTORE_RETRY_MAX_MS; wait *= 2, tries++) {
      now += wait;
      assertEquals(reserve.allowsMail(), false, `try ${tries}`);
    }
    assertEquals(tries > 3, true);
    // Room again: not seen before the bound has passed since the last try.
    await Deno.remove(`${dir}/filler`);
    now += RESTORE_RETRY_MAX_MS - 1;
    assertEquals(reserve.allowsMail(), false, "before the bound");
    now += 1;
    assertEquals(reserve.allowsMail(), true, "at the bound");
    // Given back again: the first try comes after RESTORE_RETRY_MS once more.
    fillUp(`${dir}/filler`);
    spend(reserve);
    await Deno.remove(`${dir}/filler`);
    now += RESTORE_RETRY_MS;
    assertEquals(reserve.allowsMail(), true, "a new episode starts at RESTORE_RETRY_MS");
  } finally {
    await unmountTmpfs(dir);
  }
});
