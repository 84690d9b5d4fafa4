/**
 * Bodies in segment files whose rows another process deleted (`queue delete` beside serve): that
 * process's TEMP trigger notes each in `main.bodies_gone_elsewhere` inside the transaction that
 * deletes its row (a rolled-back deletion notes nothing), and serve, which counts each segment's
 * bodies (_body_files.ts), takes the notes off at its maintenance pass and counts those bodies off
 * as it does its own deletions. serve empties the table in the very transaction in which it counts
 * the rows at start: a note is then either of a row counted (taken off later) or of one not
 * counted (emptied), never both, so no body is counted off twice. The table is made by the first
 * process that deletes beside serve (no schema step, and nothing written by serve's start: an older
 * serve leaves the notes, the next start empties them); where it cannot be made (a full disk) that
 * process notes nothing, as before, and its segments go at serve's next start.
 */
import type { DatabaseSync } from "node:sqlite";

/** The notes' table, in the queue's database. */
export const GONE_ELSEWHERE_TABLE = "bodies_gone_elsewhere";

/** A transaction of its own (the store's). */
export type Exclusive = <T>(what: string, fn: () => T) => T;

/**
 * In a process that does not count the bodies (not serve) and writes: its deletions of rows naming
 * a body in a segment (`…@offset+length`) note it, the table made if missing.
 */
export function noteBodiesGoneHere(db: DatabaseSync): void {
  try {
    db.exec(
      `CREATE TABLE IF NOT EXISTS main.${GONE_ELSEWHERE_TABLE} (name TEXT PRIMARY KEY) WITHOUT ROWID`,
    );
  } catch {
    return; // No room: nothing noted, serve's next start finds those segments unnamed.
  }
  // A TEMP trigger may write to a table of another schema (SQLite "CREATE TRIGGER").
  db.exec(
    "CREATE TEMP TRIGGER IF NOT EXISTS messages_body_gone_elsewhere AFTER DELETE ON main.messages " +
      "WHEN OLD.body_file IS NOT NULL AND instr(OLD.body_file, '@') > 0 BEGIN " +
      `INSERT OR IGNORE INTO main.${GONE_ELSEWHERE_TABLE} (name) VALUES (OLD.body_file); END;`,
  );
}

/** serve's start, inside the transaction that counts the rows: the notes so far, emptied. */
export function emptyBodiesGoneElsewhere(db: DatabaseSync): void {
  if (hasTable(db)) db.exec(`DELETE FROM main.${GONE_ELSEWHERE_TABLE}`);
}

/**
 * serve: the bodies noted so far, their notes deleted in a transaction of their own (committed
 * before they are counted off: a note is taken once). None when that transaction fails (tried
 * again at the next pass).
 */
export function takeBodiesGoneElsewhere(db: DatabaseSync, exclusive: Exclusive): string[] {
  if (!hasTable(db)) return [];
  const names: string[] = [];
  for (const row of db.prepare(`SELECT name FROM main.${GONE_ELSEWHERE_TABLE}`).all()) {
    if (typeof row.name === "string") names.push(row.name);
  }
  if (names.length === 0) return [];
  const forget = db.prepare(`DELETE FROM main.${GONE_ELSEWHERE_TABLE} WHERE name = ?`);
  try {
    exclusive("bodies deleted elsewhere", () => {
      for (const name of names) forget.run(name);
    });
  } catch {
    return [];
  }
  return names;
}

function hasTable(db: DatabaseSync): boolean {
  return db.prepare("SELECT 1 AS one FROM main.sqlite_master WHERE type = 'table' AND name = ?")
    .get(GONE_ELSEWHERE_TABLE) !== undefined;
}
