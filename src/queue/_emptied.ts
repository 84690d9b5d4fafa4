/**
 * A message goes with its last recipient (delivered, removed after expiry, deleted by domain),
 * in the transaction that removed that recipient: the one statement for it, and the removal
 * with its body chunks that `deleteDomain` and maintenance use. (A lease's settle sweeps the
 * chunks later, in batches: src/queue/_lease.ts.)
 */
import type { DatabaseSync } from "node:sqlite";

/** Deletes message `?1` if no recipient is left (bind the id twice). */
export const DELETE_IF_EMPTY_SQL = "DELETE FROM messages WHERE id = ? AND NOT EXISTS " +
  "(SELECT 1 FROM recipients WHERE message_id = ?)";

/**
 * Prepares the removal of a message left without recipients, with its chunks; the function
 * returns whether it went. Call it inside a transaction.
 */
export function emptiedRemover(db: DatabaseSync): (id: string) => boolean {
  const deleteIfEmpty = db.prepare(DELETE_IF_EMPTY_SQL);
  const deleteChunks = db.prepare("DELETE FROM message_chunks WHERE message_id = ?");
  return (id) => {
    if (Number(deleteIfEmpty.run(id, id).changes) === 0) return false;
    deleteChunks.run(id);
    return true;
  };
}
