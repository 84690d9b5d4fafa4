/**
 * What the receiving process (serve) does to the SQLite queue once, when it opens it: converts
 * an old file for incremental vacuum, and removes what a crash left (chunk rows without a
 * message, unused body files, refused messages' rows). SQL stays in this folder.
 */
import type { DatabaseSync } from "node:sqlite";
import { errorText } from "../errors.ts";
import type { Logger } from "../observe/log.ts";
import type { BodyFiles } from "./_body_files.ts";
import type { RefusedRows } from "./_refused.ts";
import { dirOf, ensureIncrementalVacuum } from "./db.ts";
import { mayBeFull } from "./space_reserve.ts";

/** Sets auto_vacuum to incremental on a file made before (VACUUM needs a quiet moment). */
export function convertForIncrementalVacuum(db: DatabaseSync, log: Logger): void {
  try {
    if (ensureIncrementalVacuum(db)) {
      log.info("queue_vacuumed", { reason: "auto_vacuum set to incremental (once)" });
    }
  } catch (err) {
    // Busy (another process reading) or no room: serve works anyway; the next start retries.
    log.warn("queue_vacuum_failed", { reason: errorText(err) });
  }
}

/**
 * Deletes chunk rows without a message (a crash mid-DATA; on a full disk, at the next start),
 * counts the body files' users, then deletes refused messages' rows (_refused.ts).
 */
export function removeLeftovers(store: {
  readonly db: DatabaseSync;
  readonly log: Logger;
  /** A transaction of its own (the store's, which retries once after giving the reserve back). */
  exclusive<T>(what: string, fn: () => T): T;
  readonly files: BodyFiles | undefined;
  readonly refused: RefusedRows;
}): void {
  const { db, log, files, refused } = store;
  let removed: number | bigint = 0;
  try {
    removed = store.exclusive("orphan removal", () =>
      db.prepare(
        "DELETE FROM message_chunks WHERE message_id NOT IN (SELECT id FROM messages)",
      ).run().changes);
  } catch (err) {
    if (!mayBeFull(err, dirOf(db))) throw err;
    // Left for the next start; the body files are counted below all the same (a segment not
    // counted would never go).
    log.warn("queue_orphans_kept", { error: errorText(err) });
  }
  if (Number(removed) > 0) log.info("queue_orphans_removed", { chunks: Number(removed) });
  files?.removeOrphans((what, fn) => store.exclusive(what, fn));
  refused.removeRecorded();
}
