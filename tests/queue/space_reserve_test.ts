/**
 * SpaceReserve (src/queue/space_reserve.ts) on a small tmpfs (root: skipped with the reason
 * otherwise): kept at start when there is room for it and its margin; given back (the file
 * emptied) when a write fails for lack of room, which is then tried once more; mail waits until
 * the reserve and its margin fit again, tried at most once per RESTORE_RETRY_MS.
 */
import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import {
  RESTORE_RETRY_MS,
  SPACE_RESERVE_FILE,
  SpaceReserve,
} from "../../src/queue/space_reserve.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";
import { fillUp, mountTmpfs, unmountTmpfs } from "../_helpers/tmpfs.ts";

const NAME = "space reserve";
const BYTES = 1024 * 1024;
const full = () => Object.assign(new Error("database or disk is full"), { errcode: 13 });

Deno.test("SpaceReserve: kept, given back for a write that found no room, put back once room returns (session 18)", async () => {
  const dir = await mountTmpfs(NAME, "4m");
  if (dir === undefined) return;
  try {
    const events: RecordedEvent[] = [];
    let now = 1_000_000;
    const reserve = new SpaceReserve(dir, {
      log: recordingLogger(events),
      bytes: BYTES,
      margin: BYTES,
      now: () => now,
    });
    const size = () => Deno.statSync(`${dir}/${SPACE_RESERVE_FILE}`).size;
    reserve.start();
    assertEquals([reserve.isKept, size()], [true, BYTES]);
    fillUp(`${dir}/filler`);
    let calls = 0;
    const value = reserve.retry("ATRN claim", () => {
      if (++calls === 1) throw full();
      return "claimed";
    });
    assertEquals([value, calls, reserve.isKept, size()], ["claimed", 2, false, 0]);
    assertEquals(events.map((e) => [e.event, e.fields.for]), [[
      "space_reserve_used",
      "ATRN claim",
    ]]);
    // Spent: a second failure is not retried (nothing left to free).
    assertThrows(() =>
      reserve.retry("settlement", () => {
        throw full();
      }), /disk is full/);
    // The reserve alone would fit again (what was given back), not with its margin: mail waits.
    now += RESTORE_RETRY_MS;
    assertEquals(reserve.allowsMail(), false);
    assertEquals(size(), 0, "a failed try leaves nothing behind");
    await Deno.remove(`${dir}/filler`);
    assertEquals(reserve.allowsMail(), false, "tried less than RESTORE_RETRY_MS ago");
    // The failed try doubled the wait (space_reserve_backoff_test.ts).
    now += 2 * RESTORE_RETRY_MS;
    assertEquals([reserve.allowsMail(), size()], [true, BYTES]);
    assertEquals(events.at(-1)?.event, "space_reserve_restored");
    // A new start finds the whole file and keeps it as it is.
    const again = new SpaceReserve(dir, { log: recordingLogger([]), bytes: BYTES, margin: BYTES });
    again.start();
    assertEquals(again.isKept, true);
  } finally {
    await unmountTmpfs(dir);
  }
});

Deno.test("SpaceReserve: no room for it and its margin at start: mail waits, logged (session 18)", async () => {
  const dir = await mountTmpfs(NAME, "1m");
  if (dir === undefined) return;
  try {
    const events: RecordedEvent[] = [];
    const reserve = new SpaceReserve(dir, { log: recordingLogger(events), bytes: BYTES });
    reserve.start();
    assertEquals(reserve.isKept, false);
    assertEquals(reserve.allowsMail(), false);
    assertEquals(events.map((e) => e.event), ["space_reserve_short"]);
    assertEquals((await Deno.stat(`${dir}/${SPACE_RESERVE_FILE}`)).size, 0);
  } finally {
    await unmountTmpfs(dir);
  }
});

Deno.test("SpaceReserve: a tool gives serve's reserve back; serve notices at its next pass (session 18)", async () => {
  const dir = await mountTmpfs(NAME, "4m");
  if (dir === undefined) return;
  try {
    const events: RecordedEvent[] = [];
    const serve = new SpaceReserve(dir, {
      log: recordingLogger(events),
      bytes: BYTES,
      margin: BYTES,
    });
    serve.start();
    const tool = SpaceReserve.ofTool(dir);
    assertEquals(tool.isKept, true);
    fillUp(`${dir}/filler`);
    let calls = 0;
    tool.retry("queue delete", () => {
      if (++calls === 1) throw full();
    });
    assertEquals([calls, (await Deno.stat(`${dir}/${SPACE_RESERVE_FILE}`)).size], [2, 0]);
    assertEquals(serve.restore(), false, "no room for it and its margin yet");
    assertEquals(events.map((e) => [e.event, e.fields.for]), [[
      "space_reserve_used",
      "another process (queue delete)",
    ]]);
    assertEquals(serve.allowsMail(), false);
    await Deno.remove(`${dir}/filler`);
    assertEquals(serve.restore(), true);
    assertEquals(events.at(-1)?.event, "space_reserve_restored");
  } finally {
    await unmountTmpfs(dir);
  }
});
