/**
 * src/queue/_hold.ts on PostgreSQL: the queued route-mx recipients of domains that have become
 * a user's are held for the domains' ATRN (route "atrn") instead, in one transaction. The
 * gauges' deltas (_gauges.ts) follow through a status round trip: the trigger counts each
 * message out under route mx as its recipients leave `queued`, and in under route atrn as they
 * return. Quotas are counted from the rows here (store.ts `usage`): nothing else to keep.
 */
import type { Sql } from "./connect.ts";
import { transactionWithin } from "./_deadline.ts";
import { lockMessages, messageIdsOf } from "./_emptied.ts";

/** Holds the queued route-mx recipients of `domains` for ATRN; returns how many. */
export function holdForAtrnPg(sql: Sql, domains: readonly string[], ms: number): Promise<number> {
  const wanted = [...new Set(domains)];
  // Nothing to undo when its COMMIT answers late: run again, it finds nothing left to move.
  return transactionWithin(sql, ms, "hold for ATRN", async (tx) => {
    const found = await tx`SELECT DISTINCT message_id FROM recipients
      WHERE domain = ANY(${wanted}::text[]) AND status = 'queued' AND route = 'mx'`;
    if (found.length === 0) return 0;
    // Messages first, in id order, before their recipients' rows (the order of _emptied.ts).
    const locked = await lockMessages(tx, messageIdsOf(found));
    const rows = await tx`UPDATE recipients SET status = 'failed'
      WHERE domain = ANY(${wanted}::text[]) AND status = 'queued' AND route = 'mx'
        AND message_id = ANY(${locked}::text[])
      RETURNING id`;
    if (rows.length === 0) return 0;
    await tx`UPDATE recipients SET status = 'queued', route = 'atrn', next_attempt_at = NULL
      WHERE id = ANY(${rows.map((r) => String(r.id))}::bigint[])`;
    return rows.length;
  }, () => {});
}
