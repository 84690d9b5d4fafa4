/**
 * Messages whose sender was refused (4xx) but whose rows may still be there: their group COMMIT
 * went through, its WAL sync failed, and the writer's clean-up DELETE failed too (SQLITE_BUSY, a
 * full disk, an I/O error). Only messages of the syncs that failed can be such (every later one
 * is refused before its rows are written). The sender sends such a message again: delivered,
 * the copy left here would be a duplicate. This process hides them from every read that hands
 * messages out (the reader's pages and body reads, so no lease offers or sends one) and deletes
 * their rows again on each maintenance pass and at close, at `normal` like the writer's clean-up
 * (after the failed sync nothing is synced any more: see _group_tx.ts). A deletion that reached
 * the WAL file holds at the next start as the commit before it did, except after a power cut;
 * one still failing at close is logged with the ids to delete by hand before serve starts again.
 */
import { errorText } from "../errors.ts";
import type { Logger } from "../observe/log.ts";
import type { GroupTransaction } from "./_group_tx.ts";
import type { WriterStatements } from "./_writer.ts";

/** Ids of refused messages whose rows may be left; see above. */
export class RefusedRows {
  readonly #ids = new Set<string>();
  readonly #group: GroupTransaction;
  readonly #sql: WriterStatements;
  readonly #log: Logger;

  constructor(group: GroupTransaction, sql: WriterStatements, log: Logger) {
    this.#group = group;
    this.#sql = sql;
    this.#log = log;
  }

  /** The rows of `id` could not be removed after its sender heard 4xx. */
  add(id: string): void {
    this.#ids.add(id);
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

  /** `retry` before the store's last commit; the ids still left are logged for the operator. */
  close(): void {
    if (this.#ids.size === 0) return;
    this.retry();
    if (this.#ids.size === 0) return;
    this.#log.error("queue_refused_left", {
      ids: [...this.#ids].join(","),
      action: "delete them with `queue delete ID…` before serve starts again: their senders " +
        "were refused and send them again, so a delivered one would be a duplicate",
    });
  }
}
