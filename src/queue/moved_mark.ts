/**
 * The mark `queue migrate` leaves in a SQLite queue it copies into PostgreSQL (schema step 12,
 * `queue_moved`): set, durably, before the first message is copied, and kept. The old
 * data_dir still holds every copied message, so a SQLite `serve` started on it again would
 * deliver them a second time: `serve` refuses a marked queue (src/cli/_backend.ts) until
 * `queue migrate --clear-mark` takes the mark off. An older program refuses the file anyway
 * (its schema version is newer than it knows).
 */
import type { DatabaseSync } from "node:sqlite";
import { PROGRAM_NAME } from "../version.ts";

/** A SQLite serve was asked to serve a queue that `queue migrate` copied to PostgreSQL. */
export class QueueMovedError extends Error {
  override readonly name = "QueueMovedError";
}

/** Marks the queue of `db` as copied at `at` (ms since the epoch); the first mark stays. */
export function markMoved(db: DatabaseSync, at: number): void {
  db.prepare("INSERT OR IGNORE INTO queue_moved (id, moved_at) VALUES (1, ?)").run(at);
}

/**
 * When `queue migrate` marked the queue of `db` (ms since the epoch), or undefined. Reads only:
 * a file whose schema has no step 12 yet has no mark.
 */
export function movedAt(db: DatabaseSync): number | undefined {
  const table = db.prepare(
    "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = 'queue_moved'",
  ).get();
  if (table === undefined) return undefined;
  const row = db.prepare("SELECT moved_at FROM queue_moved WHERE id = 1").get();
  return row === undefined ? undefined : Number(row.moved_at);
}

/** Takes the mark off; false when there was none. */
export function clearMoved(db: DatabaseSync): boolean {
  return Number(db.prepare("DELETE FROM queue_moved").run().changes) > 0;
}

/** Why a SQLite `serve` on `dataDir` (marked at `at`) refuses, and what to do: one line. */
export function movedRefusal(dataDir: string, at: number): string {
  const when = new Date(at).toISOString();
  return `queue migrate copied data_dir "${dataDir}" to PostgreSQL (${when}): a SQLite serve ` +
    `on it would deliver every copied message a second time. Set queue.backend: postgres and ` +
    `queue.postgres in the config (the PostgreSQL nodes serve that queue now); or, to go back ` +
    `to this SQLite queue (what the nodes delivered from the copy goes out again), run ` +
    `"${PROGRAM_NAME} queue migrate --clear-mark" first`;
}
