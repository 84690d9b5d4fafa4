/**
 * (session 19) Which failures spend the space reserve (src/queue/space_reserve.ts): lack of
 * room only. Before, every SQLite I/O error counted as "disk may be full", so a failing disk
 * (EIO: SQLITE_IOERR_READ, _WRITE, _FSYNC) emptied the reserve, turned new mail away with
 * 452 4.3.1 and logged `space_reserve_used` as if space were short. node:sqlite gives the
 * extended code on some errors only ("disk I/O error" from `exec` comes without one): then the
 * data directory's file system decides (is there room for a -shm page?). Room on a small tmpfs
 * (root: skipped with the reason otherwise).
 */
import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { mayBeFull, SPACE_RESERVE_FILE, SpaceReserve } from "../../src/queue/space_reserve.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";
import { fillUp, mountTmpfs, unmountTmpfs } from "../_helpers/tmpfs.ts";

const NAME = "may be full";
const sqliteError = (message: string, errcode?: number) =>
  Object.assign(new Error(message), {
    code: "ERR_SQLITE_ERROR",
    ...(errcode === undefined ? {} : { errcode, errstr: message }),
  });
const ioError = (errcode?: number) => sqliteError("disk I/O error", errcode);

Deno.test("mayBeFull: lack of room, not any I/O error (session 19)", async () => {
  const dir = await mountTmpfs(NAME, "1m");
  if (dir === undefined) return;
  try {
    const cases: [string, unknown, boolean][] = [
      ["SQLITE_FULL (exec: message only)", sqliteError("database or disk is full"), true],
      ["SQLITE_FULL (errcode)", sqliteError("database or disk is full", 13), true],
      ["SQLITE_IOERR_SHMSIZE: the -shm file cannot grow", ioError(4874), true],
      [
        "ENOSPC from Deno",
        Object.assign(new Error("No space left on device"), { code: "ENOSPC" }),
        true,
      ],
      [
        "EDQUOT from Deno",
        Object.assign(new Error("Disk quota exceeded"), { code: "EDQUOT" }),
        true,
      ],
      ["SQLITE_IOERR_READ: a failing disk", ioError(266), false],
      ["SQLITE_IOERR_WRITE", ioError(778), false],
      ["SQLITE_IOERR_FSYNC", ioError(1034), false],
      ["plain SQLITE_IOERR", ioError(10), false],
      ["I/O error without a code, room on the disk", ioError(), false],
      ["a constraint", sqliteError("UNIQUE constraint failed: messages.id", 1555), false],
    ];
    for (const [what, err, expected] of cases) assertEquals(mayBeFull(err, dir), expected, what);
    fillUp(`${dir}/filler`);
    assertEquals(mayBeFull(ioError(), dir), true, "I/O error without a code, disk full");
    assertEquals(mayBeFull(ioError(266), dir), false, "IOERR_READ stays a disk error when full");
    assertEquals(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name),
      ["filler"],
      "no probe left",
    );
  } finally {
    await unmountTmpfs(dir);
  }
});

Deno.test("SpaceReserve: a failing disk (EIO) with room does not spend the reserve (session 19)", async () => {
  const dir = await mountTmpfs(NAME, "4m");
  if (dir === undefined) return;
  try {
    const events: RecordedEvent[] = [];
    const reserve = new SpaceReserve(dir, {
      log: recordingLogger(events),
      bytes: 1 << 20,
      margin: 1 << 20,
    });
    reserve.start();
    let calls = 0;
    for (const err of [ioError(), ioError(266)]) {
      assertThrows(() =>
        reserve.retry("settlement", () => {
          calls++;
          throw err;
        }), /disk I\/O error/);
    }
    assertEquals(calls, 2, "not retried");
    assertEquals(reserve.isKept, true);
    assertEquals(reserve.allowsMail(), true);
    assertEquals((await Deno.stat(`${dir}/${SPACE_RESERVE_FILE}`)).size, 1 << 20);
    assertEquals(events.map((e) => e.event), []);
  } finally {
    await unmountTmpfs(dir);
  }
});
