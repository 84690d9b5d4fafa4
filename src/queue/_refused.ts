/**
 * Messages whose sender was refused (4xx) but whose rows may still be there: their group COMMIT
 * went through, its WAL sync failed, and the writer's clean-up DELETE failed too (SQLITE_BUSY, a
 * full disk, an I/O error). Only messages of the syncs that failed can be such (every later one
 * is refused before its rows are written). The sender sends such a message again: delivered,
 * the copy left here would be a duplicate. This process hides them from every read that hands
 * messages out (the reader's pages and body reads, so no lease offers or sends one) and deletes
 * their rows again on each maintenance pass and at close, at `normal` like the writer's clean-up
 * (after the failed sync nothing is synced any more: see _sync_waiters.ts). A deletion that reached
 * the WAL file holds at the next start as the commit before it did, except after a power cut.
 * So that a process killed before (kill -9, a crash) does not forget them, the receiving
 * process also appends each id to `refused_ids` beside the database, written as the rows were
 * (a sync is tried, but the disk just failed one); its next start hides the rows the file names
 * and, once it has counted the bodies of each segment (`removeRecorded`), deletes them, syncs,
 * and only then removes the file. An id the file could not take, still there at close, is
 * logged with the ids to delete by hand before serve starts again.
 */
import { dirname, join } from "../posix_path.ts";
import type { DatabaseSync } from "node:sqlite";
import { errorText } from "../errors.ts";
import { mainFile } from "./db.ts";
import type { Logger } from "../observe/log.ts";
import type { GroupTransaction } from "./_group_tx.ts";
import type { WriterStatements } from "./_writer.ts";

/** The file beside the database that keeps the ids across a restart. */
export const REFUSED_IDS_FILE = "refused_ids";

/**
 * The ids `refused_ids` of `dataDir` names: rows a killed serve left, for its next start to
 * delete; `queue migrate` copies none of them.
 */
export function refusedIdsIn(dataDir: string): Set<string> {
  return new Set(readIds(join(dataDir, REFUSED_IDS_FILE)));
}

/** The ids in the file at `path` (none when there is no file). */
function readIds(path: string): string[] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter((id) => id !== "");
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw new Error(`Cannot read "${path}": ${errorText(err)}`);
  }
}

/** Ids of refused messages whose rows may be left; see above. */
export class RefusedRows {
  readonly #ids = new Set<string>();
  /** Those not in the file (it could not be written): only the operator can remove them. */
  readonly #unrecorded = new Set<string>();
  readonly #group: GroupTransaction;
  readonly #sql: WriterStatements;
  readonly #log: Logger;
  /** `refused_ids` of a database file, for its owner; undefined otherwise (or in memory). */
  readonly #file: string | undefined;

  /**
   * `isOwner`: this process receives mail (serve: it holds the data directory's lock), so it
   * writes the file and, now, deletes the rows the file names. Another (`queue …`) leaves the
   * file alone: its rows are shown as any others until serve deletes them.
   */
  constructor(
    deps: { db: DatabaseSync; group: GroupTransaction; sql: WriterStatements; log: Logger },
    isOwner: boolean,
  ) {
    this.#group = deps.group;
    this.#sql = deps.sql;
    this.#log = deps.log;
    const db = isOwner ? mainFile(deps.db) : "";
    this.#file = db === "" ? undefined : join(dirname(db), REFUSED_IDS_FILE);
    for (const id of this.#file === undefined ? [] : readIds(this.#file)) this.#ids.add(id);
  }

  /** The rows of `id` could not be removed after its sender heard 4xx. */
  add(id: string): void {
    this.#ids.add(id);
    if (this.#file === undefined) return;
    try {
      const file = Deno.openSync(this.#file, { append: true, create: true, mode: 0o600 });
      try {
        const line = new TextEncoder().encode(`${id}\n`);
        for (let at = 0; at < line.length;) at += file.writeSync(line.subarray(at));
        try {
          file.syncDataSync();
        } catch {
          // Written: it outlives a kill as the rows do. The disk has just failed a sync.
        }
      } finally {
        file.close();
      }
    } catch (err) {
      this.#unrecorded.add(id);
      this.#log.warn("queue_refused_unrecorded", { id, file: this.#file, reason: errorText(err) });
    }
  }

  /**
   * At start, once the store counted each body segment's bodies from the rows (BodyFiles
   * removeOrphans): deletes the rows the file names, on disk, then the file (kept if either
   * fails). Their bodies are counted out when the deletions' notes are swept, like any deleted
   * message's: deleted before the count, a body was counted out twice, and a segment it shared
   * went while a queued message still needed it.
   */
  removeRecorded(): void {
    if (this.#ids.size === 0 || this.#file === undefined) return;
    this.retry();
    if (this.#ids.size > 0) return;
    try {
      this.#group.syncAllNow();
      Deno.removeSync(this.#file ?? "");
    } catch (err) {
      this.#log.warn("queue_refused_file_kept", { file: this.#file, reason: errorText(err) });
    }
  }

  /** Whether `id` is such a message (never to be handed out). */
  has(id: string): boolean {
    return this.#ids.size > 0 && this.#ids.has(id);
  }

  /** Deletes their rows again, committed (written to the WAL file) now; those are forgotten. */
  retry(): void {
    if (this.#ids.size === 0) return;
    for (const id of this.#ids) {
      try {
        this.#group.write(undefined, () => {
          // Recipients go with the message (ON DELETE CASCADE).
          this.#sql.deleteMessage.run(id);
          this.#sql.deleteChunks.run(id);
        }, "normal");
        this.#ids.delete(id);
        this.#log.info("queue_refused_removed", { id });
      } catch (err) {
        this.#log.warn("queue_refused_kept", { id, reason: errorText(err) });
      }
    }
    // Not left to the lazy COMMIT: a kill meanwhile would keep the rows for the next start.
    this.#group.flushNow();
  }

  /**
   * `retry` before the store's last commit; the ids still left are logged: the file's are
   * deleted at the next start, the others only by the operator.
   */
  close(): void {
    if (this.#ids.size === 0) return;
    this.retry();
    const left = [...this.#ids];
    if (left.length === 0) return;
    const byHand = left.filter((id) => this.#unrecorded.has(id));
    this.#log.error("queue_refused_left", {
      ids: left.join(","),
      action: byHand.length === 0
        ? `none: serve deletes them at its next start (${this.#file} names them)`
        : `delete ${byHand.join(",")} with \`queue delete ID…\` before serve starts again: ` +
          "their senders were refused and send them again, so a delivered one would be a duplicate",
    });
  }
}
