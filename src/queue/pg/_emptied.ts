/**
 * On PostgreSQL a message goes with its last recipient (delivered, removed after expiry,
 * deleted by domain), and its body chunks with it, in the transaction that removed that
 * recipient. One statement pair for the lease's settle, `deleteDomain` and maintenance.
 */
import type { Tx } from "./connect.ts";

/** The distinct `message_id`s of rows a `DELETE … RETURNING message_id` gave back. */
export function messageIdsOf(rows: readonly { readonly message_id?: unknown }[]): string[] {
  return [...new Set(rows.map((r) => String(r.message_id)))];
}

/** Deletes those of `ids` that have no recipient left, and their chunks; returns how many. */
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
