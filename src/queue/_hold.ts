/**
 * Mail waiting for a domain's MX hosts (route "mx") held for the domain's ATRN instead (route
 * "atrn"), for a domain that has become a user's since the mail came in: its MX names us now
 * or soon, and the outbound worker would fail it as a loop (5.4.6). Called by `user add` and
 * `user domains --add` (src/cli/user.ts) and by the outbound worker when it finds a destination
 * owned (src/outbound/_batch.ts). Mail already held for ATRN never goes the other way: a domain
 * taken from its owner keeps its mail until expiry (or until a new owner collects it).
 *
 * The counters kept by triggers follow the route: `route_waiting` through a status round trip
 * in the caller's transaction (out under route mx as the recipients leave `queued`, in under
 * route atrn as they return: the triggers of _schema_counters.ts, not a copy of them), and
 * `domain_usage`, which counts route atrn only and has no trigger on updates, by one statement
 * here: a message counts in for a domain where it had no route-atrn recipient yet.
 */
import type { DatabaseSync } from "node:sqlite";

/**
 * Holds the queued route-mx recipients of `domains` for ATRN; returns how many. Runs inside a
 * transaction of the caller's (the three statements must commit together).
 */
export function holdForAtrn(db: DatabaseSync, domains: readonly string[]): number {
  const wanted = JSON.stringify([...new Set(domains)]);
  // Through the outbound queue's own index (step 5): the domains' route-atrn backlog, which the
  // (domain, status, message_id) index would walk (200,000 rows: ~100 ms under the write lock),
  // is never read.
  const mx = "recipients INDEXED BY recipients_mx_due";
  const waiting = "route = 'mx' AND status = 'queued' AND " +
    "domain IN (SELECT value FROM json_each(?))";
  db.prepare(
    `INSERT INTO domain_usage (domain, messages, bytes)
      SELECT h.domain, count(*), sum(m.size) FROM (
        SELECT DISTINCT domain, message_id FROM ${mx} WHERE ${waiting}
      ) h JOIN messages m ON m.id = h.message_id
      WHERE NOT EXISTS (SELECT 1 FROM recipients r INDEXED BY recipients_message
        WHERE r.message_id = h.message_id AND r.domain = h.domain AND r.route = 'atrn')
      GROUP BY h.domain
      ON CONFLICT (domain) DO UPDATE SET
        messages = messages + excluded.messages, bytes = bytes + excluded.bytes`,
  ).run(wanted);
  const rows = db.prepare(
    `UPDATE recipients SET status = 'failed' WHERE id IN (SELECT id FROM ${mx} WHERE ${waiting}) ` +
      "RETURNING id",
  ).all(wanted);
  if (rows.length === 0) return 0;
  db.prepare(
    "UPDATE recipients SET status = 'queued', route = 'atrn', next_attempt_at = NULL " +
      "WHERE id IN (SELECT value FROM json_each(?))",
  ).run(JSON.stringify(rows.map((r) => Number(r.id))));
  return rows.length;
}
