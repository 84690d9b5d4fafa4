/**
 * `check-config`'s look at a SQLite data_dir for the mark `queue migrate` leaves
 * (src/queue/moved_mark.ts): serve refuses a marked queue with exit 2, so check-config must not
 * call that config valid. It reads and creates nothing else: no data_dir, and no -wal or -shm
 * file beside odmr.db (made by root, as `sudo … check-config` would, they would lock serve's own
 * user out of its queue). So the file is opened as SQLite does only when its -wal and -shm
 * already exist; a -wal without -shm (a data_dir copied while open, a crash) is applied to the
 * file in memory (src/queue/wal_image.ts), so that a mark still only in the WAL is seen as serve
 * sees it; with no -wal the file is read as it is (`openImmutable`).
 */
import { join } from "../posix_path.ts";
import { DatabaseSync } from "node:sqlite";
import type { Config } from "../config/types.ts";
import { DATABASE_FILE, openImmutable } from "../queue/db.ts";
import { movedAt, movedRefusal } from "../queue/moved_mark.ts";
import { walImage } from "../queue/wal_image.ts";

/** serve's refusal of `config`'s marked SQLite queue, or undefined (unmarked, none, postgres). */
export function movedQueueRefusal(config: Config): string | undefined {
  if (config.queue.backend !== "sqlite") return undefined;
  const file = join(config.dataDir, DATABASE_FILE);
  if (!exists(file)) return undefined;
  const db = openToRead(file);
  try {
    const at = movedAt(db);
    return at === undefined ? undefined : movedRefusal(config.dataDir, at);
  } finally {
    db.close();
  }
}

/** `file` as serve would read it, leaving no -wal or -shm beside it. */
function openToRead(file: string): DatabaseSync {
  const hasWal = exists(`${file}-wal`);
  if (hasWal && exists(`${file}-shm`)) return new DatabaseSync(file, { readOnly: true });
  if (!hasWal) return openImmutable(file);
  const image = walImage(Deno.readFileSync(file), Deno.readFileSync(`${file}-wal`));
  const db = new DatabaseSync(":memory:");
  db.deserialize(image);
  return db;
}

function exists(file: string): boolean {
  try {
    Deno.statSync(file);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
