/**
 * `check-config`'s look at a SQLite data_dir for the mark `queue migrate` leaves
 * (src/queue/moved_mark.ts): serve refuses a marked queue with exit 2, so check-config must not
 * call that config valid. It reads and creates nothing else: no data_dir, and no -wal or -shm
 * file beside odmr.db (made by root, as `sudo … check-config` would, they would lock serve's own
 * user out of its queue). So the file is opened immutable unless its -wal and -shm already
 * exist; then a mark still only in the WAL of a migrate that crashed is not seen (serve sees it).
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { pathToFileURL } from "node:url";
import type { Config } from "../config/types.ts";
import { DATABASE_FILE } from "../queue/db.ts";
import { movedAt, movedRefusal } from "../queue/moved_mark.ts";

/** serve's refusal of `config`'s marked SQLite queue, or undefined (unmarked, none, postgres). */
export function movedQueueRefusal(config: Config): string | undefined {
  if (config.queue.backend !== "sqlite") return undefined;
  const file = join(config.dataDir, DATABASE_FILE);
  if (!exists(file)) return undefined;
  const hasWal = exists(`${file}-wal`) && exists(`${file}-shm`);
  const url = pathToFileURL(file);
  if (!hasWal) url.searchParams.set("immutable", "1");
  const db = new DatabaseSync(url, { readOnly: true });
  try {
    const at = movedAt(db);
    return at === undefined ? undefined : movedRefusal(config.dataDir, at);
  } finally {
    db.close();
  }
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
