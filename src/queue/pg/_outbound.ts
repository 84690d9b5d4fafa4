/**
 * The outbound side of the PostgreSQL queue: claiming one due destination domain of
 * route-"mx" recipients under an `outbound_leases` row (a lease namespace apart from ATRN's
 * `domain_leases`, shared by every node), the earliest next attempt, and the domains under a
 * live outbound lease. SQL stays in this folder.
 */
import type { Lease, OutboundClaimOptions } from "../types.ts";
import { PgLease, type PgLeaseDeps } from "./_lease.ts";

/** Candidate domains read per claim: a domain another node takes meanwhile is skipped. */
const CANDIDATES = 8;

/** Leases one due destination, or undefined when none is due. `owner` is `NODE|session`. */
export async function claimOutboundPg(
  deps: PgLeaseDeps,
  owner: string,
  opts: OutboundClaimOptions,
): Promise<Lease | undefined> {
  const { sql } = deps;
  const until = opts.now + opts.leaseSeconds * 1000;
  // recipients_mx_due walks due recipients by next attempt; the first domains without a
  // live outbound lease are the candidates, the oldest due first.
  const rows = await sql`SELECT domain, min(next_attempt_at) AS first FROM recipients
    WHERE route = 'mx' AND status = 'queued' AND next_attempt_at <= ${opts.now}
      AND domain NOT IN (SELECT domain FROM outbound_leases WHERE lease_until > ${opts.now})
    GROUP BY domain ORDER BY first LIMIT ${CANDIDATES}`;
  for (const row of rows) {
    const domain = String(row.domain);
    // The upsert takes the row lock: of two nodes claiming one domain, one wins.
    const taken = await sql`INSERT INTO outbound_leases (domain, owner, lease_until)
      VALUES (${domain}, ${owner}, ${until})
      ON CONFLICT (domain) DO UPDATE SET owner = EXCLUDED.owner,
        lease_until = EXCLUDED.lease_until
      WHERE outbound_leases.lease_until <= ${opts.now}
      RETURNING domain`;
    if (taken.length === 0) continue;
    return new PgLease([domain], {
      owner,
      leaseSeconds: opts.leaseSeconds,
      route: "mx",
      dueBy: opts.now,
    }, deps);
  }
  return undefined;
}

/** The earliest next attempt among queued mx-route recipients, or undefined. */
export async function nextOutboundAtPg(deps: PgLeaseDeps): Promise<number | undefined> {
  const [row] = await deps.sql`SELECT min(next_attempt_at)::float8 AS at FROM recipients
    WHERE route = 'mx' AND status = 'queued'`;
  return row?.at === null || row?.at === undefined ? undefined : Number(row.at);
}

/** Domains under a live outbound lease at `now`. */
export async function outboundLeasedPg(deps: PgLeaseDeps, now: number): Promise<Set<string>> {
  const rows = await deps.sql`SELECT domain FROM outbound_leases WHERE lease_until > ${now}`;
  return new Set(rows.map((r) => String(r.domain)));
}
