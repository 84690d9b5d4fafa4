/**
 * A SQLite database file with its WAL applied, in memory: what a reader sees, for a data_dir whose
 * `-wal` has no `-shm` beside it (copied while open, or left by a crash), read without writing
 * anything. SQLite itself must make the `-shm` to read such a WAL, and `immutable` ignores it.
 * Pure. Follows the WAL format of https://www.sqlite.org/fileformat2.html §4: frames count only up
 * to the last commit frame whose salts and running checksum hold; a torn or stale tail is ignored,
 * as SQLite's own recovery does.
 */

const WAL_HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 24;
/** The magic with the low bit set: checksums read words big-endian; clear: little-endian. */
const WAL_MAGIC = 0x377f0682;
const WAL_VERSION = 3007000;
const MIN_PAGE_BYTES = 512;
const MAX_PAGE_BYTES = 65536;

/**
 * `db` (the database file's bytes) with the committed frames of `wal` written over its pages,
 * marked as a rollback-journal file so that an in-memory open reads it as it is. A WAL that is
 * empty or not a WAL of this format leaves `db` as it is (SQLite ignores it then too).
 */
export function walImage(db: Uint8Array, wal: Uint8Array): Uint8Array {
  const view = new DataView(wal.buffer, wal.byteOffset, wal.byteLength);
  const frames = committedFrames(view, db.length);
  if (frames === undefined) return asRollback(db.slice());
  const { pageBytes, count, pages } = frames;
  const image = new Uint8Array(pages * pageBytes);
  image.set(db.subarray(0, Math.min(db.length, image.length)));
  const frameBytes = FRAME_HEADER_BYTES + pageBytes;
  for (let i = 0; i < count; i++) {
    const offset = WAL_HEADER_BYTES + i * frameBytes;
    const page = view.getUint32(offset);
    if (page > pages) continue; // a page the last commit cut off (the file shrank).
    const data = wal.subarray(offset + FRAME_HEADER_BYTES, offset + FRAME_HEADER_BYTES + pageBytes);
    image.set(data, (page - 1) * pageBytes);
  }
  return asRollback(image);
}

interface Committed {
  readonly pageBytes: number;
  /** Frames up to the last commit, from the first. */
  readonly count: number;
  /** The database's size in pages after that commit. */
  readonly pages: number;
}

/**
 * The frames up to the last valid commit. A commit's size in pages is at most the file's pages
 * plus the frames so far (new pages are written as frames), so the image is bounded by the
 * two files' sizes.
 */
function committedFrames(wal: DataView, dbBytes: number): Committed | undefined {
  if (wal.byteLength < WAL_HEADER_BYTES) return undefined;
  const magic = wal.getUint32(0);
  if ((magic & ~1) >>> 0 !== WAL_MAGIC || wal.getUint32(4) !== WAL_VERSION) return undefined;
  const bigEndian = (magic & 1) === 1;
  const pageBytes = wal.getUint32(8);
  if (
    pageBytes < MIN_PAGE_BYTES || pageBytes > MAX_PAGE_BYTES || (pageBytes & (pageBytes - 1)) !== 0
  ) {
    return undefined;
  }
  let sum = checksum(wal, 0, 24, [0, 0], bigEndian);
  if (sum[0] !== wal.getUint32(24) || sum[1] !== wal.getUint32(28)) return undefined;
  const salt1 = wal.getUint32(16);
  const salt2 = wal.getUint32(20);
  const frameBytes = FRAME_HEADER_BYTES + pageBytes;
  const dbPages = Math.ceil(dbBytes / pageBytes);
  let frames = 0;
  let committed: Committed | undefined;
  for (
    let offset = WAL_HEADER_BYTES;
    offset + frameBytes <= wal.byteLength;
    offset += frameBytes
  ) {
    const page = wal.getUint32(offset);
    if (page === 0) break;
    if (wal.getUint32(offset + 8) !== salt1 || wal.getUint32(offset + 12) !== salt2) break;
    sum = checksum(wal, offset, 8, sum, bigEndian);
    sum = checksum(wal, offset + FRAME_HEADER_BYTES, pageBytes, sum, bigEndian);
    if (sum[0] !== wal.getUint32(offset + 16) || sum[1] !== wal.getUint32(offset + 20)) break;
    frames++;
    const pagesAfterCommit = wal.getUint32(offset + 4);
    if (pagesAfterCommit > dbPages + frames) break;
    if (pagesAfterCommit !== 0) committed = { pageBytes, count: frames, pages: pagesAfterCommit };
  }
  return committed;
}

/** SQLite's WAL checksum over `length` bytes (a multiple of 8) from `start`, continuing `sum`. */
function checksum(
  view: DataView,
  start: number,
  length: number,
  sum: readonly [number, number],
  bigEndian: boolean,
): [number, number] {
  let [s0, s1] = sum;
  const littleEndian = !bigEndian;
  for (let i = start; i < start + length; i += 8) {
    s0 = (s0 + view.getUint32(i, littleEndian) + s1) >>> 0;
    s1 = (s1 + view.getUint32(i + 4, littleEndian) + s0) >>> 0;
  }
  return [s0, s1];
}

/**
 * Bytes 18 and 19 of the database header say "WAL" (2); set to "rollback journal" (1) so that an
 * in-memory open reads the pages instead of looking for a WAL of its own.
 */
function asRollback(image: Uint8Array): Uint8Array {
  if (image.length >= 20) {
    image[18] = 1;
    image[19] = 1;
  }
  return image;
}
