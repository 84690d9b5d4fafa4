/**
 * Faults injected on a store's own SQLite connection: `exec` of the statement named next in a
 * plan throws, as SQLITE_BUSY or an I/O error would (a COMMIT that fails leaves its transaction
 * open: the group rolls it back).
 */
import type { DatabaseSync } from "node:sqlite";

/** Statements to fail, in order: the next `exec` of `plan[0]` throws and is taken off. */
export function failingExec(db: DatabaseSync): { plan: string[] } {
  const faults = { plan: [] as string[] };
  const exec = db.exec.bind(db);
  db.exec = (sql: string) => {
    if (sql === faults.plan[0]) {
      faults.plan.shift();
      throw new Error(`injected: ${sql} failed`);
    }
    return exec(sql);
  };
  return faults;
}
