/**
 * The pending failure reports in SQLite (schema step 11, src/queue/_schema.ts): a recipient
 * settled failed is marked in its settlement's transaction (_lease.ts), and the mark goes with
 * the write that queued its report (_writer.ts) or here, when one was decided against.
 */
import type { GroupTransaction } from "./_group_tx.ts";
import type { WriterStatements } from "./_writer.ts";
import type { ReportedRecipients } from "./types.ts";

/** Takes the pending mark off `of`'s recipients; resolves once committed. */
export function reportsDone(
  group: GroupTransaction,
  sql: WriterStatements,
  of: ReportedRecipients,
): Promise<void> {
  if (of.recipientIds.length === 0) return Promise.resolve();
  try {
    group.write(undefined, () => {
      for (const id of of.recipientIds) sql.reportDone.run(of.messageId, id);
    }, "normal");
  } catch (err) {
    return Promise.reject(err);
  }
  return group.whenDurable();
}
