/**
 * walImage(): a database file with its WAL applied in memory, read as SQLite reads it, for a
 * `-wal` without `-shm` (check-config). Real files SQLite wrote; the frames count up to the last
 * commit whose salts and running checksum hold, and a commit claiming more pages than the two
 * files can hold is not believed.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { walImage } from "../../src/queue/wal_image.ts";

const FRAME_HEADER_BYTES = 24;
const WAL_HEADER_BYTES = 32;

/** odmr.db and odmr.db-wal as a copy made while the database was open: rows 1..n committed. */
function copiedWhileOpen(rows: number): { db: Uint8Array; wal: Uint8Array; pageBytes: number } {
  const dir = Deno.makeTempDirSync({ prefix: "odmr-wal-image-" });
  try {
    const live = new DatabaseSync(`${dir}/x.db`);
    live.exec("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0");
    live.exec("CREATE TABLE t (n INTEGER, pad TEXT)");
    live.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    for (let n = 1; n <= rows; n++) {
      live.prepare("INSERT INTO t VALUES (?, ?)").run(n, "x".repeat(3000));
    }
    const copy = {
      db: Deno.readFileSync(`${dir}/x.db`),
      wal: Deno.readFileSync(`${dir}/x.db-wal`),
    };
    live.close();
    return { ...copy, pageBytes: new DataView(copy.wal.buffer).getUint32(8) };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

function rowsOf(image: Uint8Array): number[] {
  const db = new DatabaseSync(":memory:");
  try {
    db.deserialize(image);
    return db.prepare("SELECT n FROM t ORDER BY n").all().map((r) => Number(r.n));
  } finally {
    db.close();
  }
}

function frameCount(wal: Uint8Array, pageBytes: number): number {
  return (wal.length - WAL_HEADER_BYTES) / (FRAME_HEADER_BYTES + pageBytes);
}

function frameOffset(index: number, pageBytes: number): number {
  return WAL_HEADER_BYTES + index * (FRAME_HEADER_BYTES + pageBytes);
}

/** The reference WAL checksum (fileformat2 §4.3), big- or little-endian words as the magic says. */
function resum(wal: Uint8Array, pageBytes: number): void {
  const view = new DataView(wal.buffer, wal.byteOffset, wal.byteLength);
  const le = (view.getUint32(0) & 1) === 0;
  let s0 = 0;
  let s1 = 0;
  const add = (start: number, length: number) => {
    for (let i = start; i < start + length; i += 8) {
      s0 = (s0 + view.getUint32(i, le) + s1) >>> 0;
      s1 = (s1 + view.getUint32(i + 4, le) + s0) >>> 0;
    }
  };
  add(0, 24);
  view.setUint32(24, s0);
  view.setUint32(28, s1);
  for (let i = 0; i < frameCount(wal, pageBytes); i++) {
    const at = frameOffset(i, pageBytes);
    add(at, 8);
    add(at + FRAME_HEADER_BYTES, pageBytes);
    view.setUint32(at + 16, s0);
    view.setUint32(at + 20, s1);
  }
}

Deno.test("walImage() reads every committed row of a WAL the database file does not hold yet", () => {
  const { db, wal } = copiedWhileOpen(5);
  assertEquals(rowsOf(walImage(db, new Uint8Array(0))), [], "the file alone has none of them");
  assertEquals(rowsOf(walImage(db, wal)), [1, 2, 3, 4, 5]);
});

Deno.test("walImage() stops at a frame whose checksum or salt does not hold (a torn tail)", async (t) => {
  const { db, wal, pageBytes } = copiedWhileOpen(3);
  const last = frameOffset(frameCount(wal, pageBytes) - 1, pageBytes);
  await t.step("a byte of the last commit's page changed: its transaction is not read", () => {
    const torn = wal.slice();
    torn[last + FRAME_HEADER_BYTES + 100] = (torn[last + FRAME_HEADER_BYTES + 100] as number) ^ 1;
    assertEquals(rowsOf(walImage(db, torn)), [1, 2]);
  });
  await t.step("the last frame's salt is another WAL's (left from before a restart)", () => {
    const stale = wal.slice();
    stale[last + 8] = (stale[last + 8] as number) ^ 1;
    assertEquals(rowsOf(walImage(db, stale)), [1, 2]);
  });
  await t.step("half a frame at the end is ignored", () => {
    assertEquals(rowsOf(walImage(db, wal.slice(0, last + 100))), [1, 2]);
  });
});

Deno.test("walImage() leaves the file as it is for an empty WAL or one that is not a WAL", () => {
  const { db, wal } = copiedWhileOpen(2);
  const checkpointed = walImage(db, new Uint8Array(0));
  assertEquals(rowsOf(checkpointed), []);
  const foreign = wal.slice();
  foreign[3] = 0; // not the magic
  assertEquals(rowsOf(walImage(db, foreign)), []);
  const badHeader = wal.slice();
  badHeader[12] = (badHeader[12] as number) ^ 1; // checkpoint sequence without its checksum
  assertEquals(rowsOf(walImage(db, badHeader)), []);
});

Deno.test("walImage() does not believe a commit of more pages than the file and the frames hold", () => {
  const { db, wal, pageBytes } = copiedWhileOpen(3);
  const frames = frameCount(wal, pageBytes);
  const dbPages = db.length / pageBytes;
  const view = new DataView(wal.buffer);
  const last = frameOffset(frames - 1, pageBytes);
  assertEquals(view.getUint32(last + 4) <= dbPages + frames, true, "SQLite's own commit fits");
  // N: the most a commit can claim is read; N+1 is not (checksums made to hold either way).
  const atBound = wal.slice();
  new DataView(atBound.buffer).setUint32(last + 4, dbPages + frames);
  resum(atBound, pageBytes);
  assertEquals(walImage(db, atBound).length, (dbPages + frames) * pageBytes);
  const over = wal.slice();
  new DataView(over.buffer).setUint32(last + 4, dbPages + frames + 1);
  resum(over, pageBytes);
  assertEquals(rowsOf(walImage(db, over)), [1, 2]);
});
