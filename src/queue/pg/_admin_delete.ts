/**
 * The operator's deletes on PostgreSQL (`queue delete ID…`, `queue delete --domain`), on the
 * store's pool for what may take long (no statement timeout: a domain may have many messages),
 * each one transaction under the long calls' deadline (PG_LONG_DEADLINE_MS, _deadline.ts): on
 * a connection gone silent the command fails with its reason, where it waited for good. A
 * COMMIT answered late needs no undo: the command run again finds the messages gone.
 */
import type { Sql } from "./connect.ts";
import { transactionWithin } from "./_deadline.ts";
import { deleteEmptied, lockMessages, messageIdsOf } from "./_emptied.ts";

/** Deletes the messages `ids` with their recipients and chunks; how many there were. */
export function deleteMessagesPg(sql: Sql, ids: readonly string[], ms: number): Promise<number> {
  const unique = [...new Set(ids)];
  return transactionWithin(sql, ms, "delete", async (tx) => {
    // Locked in id order first, like every path that deletes recipients (_emptied.ts).
    const locked = await lockMessages(tx, unique);
    const gone = await tx`DELETE FROM messages WHERE id = ANY(${locked}::text[]) RETURNING id`;
    await tx`DELETE FROM message_chunks WHERE message_id = ANY(${unique}::text[])`;
    return gone.length;
  }, () => {});
}

/** Deletes `domain`'s recipients (and messages left with none); how many messages it touched. */
export function deleteDomainPg(sql: Sql, domain: string, ms: number): Promise<number> {
  return transactionWithin(sql, ms, "delete of a domain", async (tx) => {
    // The domain's messages locked first (_emptied.ts); one queued meanwhile is left.
    const locked = await lockMessages(
      tx,
      messageIdsOf(await tx`SELECT DISTINCT message_id FROM recipients WHERE domain = ${domain}`),
    );
    const rows = await tx`DELETE FROM recipients
      WHERE domain = ${domain} AND message_id = ANY(${locked}::text[]) RETURNING message_id`;
    const touched = messageIdsOf(rows);
    await deleteEmptied(tx, touched);
    return touched.length;
  }, () => {});
}
