/**
 * On PostgreSQL a message goes with its last recipient (delivered, removed after expiry,
 * deleted by domain), and its body chunks with it, in the transaction that removed that
 * recipient. One statement pair for the lease's settle, `deleteDomain` and maintenance.
 *
 * Every transaction that deletes recipients first locks their messages' rows (`lockMessages`,
 * in id order, as `queue delete` does): two transactions each removing one of a message's last
 * two recipients would otherwise each still see the other's (READ COMMITTED), so neither would
 * delete the message and it stayed, with its body, for good. Locked, the second waits for the
 * first's COMMIT and its check sees that recipient gone. One order (messages by id, then
 * their recipients) everywhere, so these transactions do not deadlock each other.
 */
import type { Tx } from "./connect.ts";

/** The distinct `message_id`s of rows a `DELETE … RETURNING message_id` gave back. */
export function messageIdsOf(rows: readonly { readonly message_id?: unknown }[]): string[] {
  return [...new Set(rows.map((r) => String(r.message_id)))];
}

/** Locks the rows of those of `ids` that exist, in id order; returns their ids. */
export async function lockMessages(tx: Tx, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await tx`SELECT id FROM messages WHERE id = ANY(${[...ids]}::text[])
    ORDER BY id FOR UPDATE`;
  return rows.map((r) => String(r.id));
}

/**
 * Deletes those of `ids` that have no recipient left, and their chunks; returns how many.
 * The caller locked them (`lockMessages`) before deleting their recipients.
 */
export async function deleteEmptied(tx: Tx, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const empty = await tx`DELETE FROM messages m WHERE m.id = ANY(${[...ids]}::text[])
    AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id) RETURNING id`;
  if (empty.length === 0) return 0;
  await tx`DELETE FROM message_chunks WHERE message_id = ANY(${
    empty.map((e) => String(e.id))
  }::text[])`;
  return empty.length;
}
