/**
 * The outbound side of the PostgreSQL queue: claiming one due destination domain of
 * route-"mx" recipients under an `outbound_leases` row (a lease namespace apart from ATRN's
 * `domain_leases`, shared by every node) and the earliest next attempt; the domains under a
 * live lease are _lease.ts's `liveLeasesPg`. SQL stays in this folder.
 */
import type { Logger } from "../../observe/log.ts";
import type { Lease, OutboundClaimOptions } from "../types.ts";
import { within } from "./_deadline.ts";
import { PgLease, type PgLeaseDeps } from "./_lease.ts";

/** Candidate domains read per claim: a domain another node takes meanwhile is skipped. */
const CANDIDATES = 8;

/** One outbound claim: its domain, owner and expiry name its row. */
interface ClaimRow {
  readonly domain: string;
  readonly owner: string;
  readonly until: number;
}

/**
 * This node's outbound claims whose outcome is unknown: the upsert was sent, its answer lost
 * (deadline, connection dropped), so the server may have committed it, now or later (a
 * statement waiting for a lock on a connection that went silent). Such a lease would hold its
 * destination for the lease's time, owned by a claim nobody runs (mail stalls). Each is
 * deleted (by domain, owner and expiry: that claim's row, never a live lease) at once, and
 * again at every later claim of this store until it would have expired.
 */
export class DoubtfulClaims {
  readonly #rows = new Map<string, ClaimRow>();
  #lastUntil = 0;

  get size(): number {
    return this.#rows.size;
  }

  /**
   * The expiry of a new claim at `now`: above every earlier one of this store, so that no
   * doubtful claim's row ever names a live lease of the same domain.
   */
  untilFor(now: number, leaseSeconds: number): number {
    this.#lastUntil = Math.max(now + leaseSeconds * 1000, this.#lastUntil + 1);
    return this.#lastUntil;
  }

  add(row: ClaimRow): void {
    this.#rows.set(`${row.domain}\n${row.owner}\n${row.until}`, row);
  }

  /** Deletes the doubtful claims' rows; forgets the ones past their expiry at `now`. */
  async sweep(deps: PgLeaseDeps, now: number, log: Logger): Promise<void> {
    for (const [key, row] of this.#rows) if (row.until <= now) this.#rows.delete(key);
    if (this.#rows.size === 0) return;
    const rows = [...this.#rows.values()];
    try {
      const gone = await within(
        deps.sql`DELETE FROM outbound_leases o
          USING unnest(${rows.map((r) => r.domain)}::text[], ${rows.map((r) => r.owner)}::text[],
            ${rows.map((r) => r.until)}::bigint[]) AS u(domain, owner, until)
          WHERE o.domain = u.domain AND o.owner = u.owner AND o.lease_until = u.until
          RETURNING o.domain`,
        deps.deadlineMs,
        "release of a doubtful outbound claim",
      );
      for (const r of gone) log.warn("outbound_claim_taken_back", { domain: String(r.domain) });
    } catch (err) {
      log.warn("lease_release_failed", { error: String(err) });
    }
  }
}

/**
 * Leases one due destination, or undefined when none is due. `owner` is `NODE|session`. Each
 * statement has the call deadline (_deadline.ts); an upsert whose answer did not come is
 * doubtful (`DoubtfulClaims`) and the claim fails: the worker tries again later.
 */
export async function claimOutboundPg(
  deps: PgLeaseDeps,
  owner: string,
  opts: OutboundClaimOptions,
  doubtful: DoubtfulClaims,
  log: Logger,
): Promise<Lease | undefined> {
  const { sql } = deps;
  // Lease times are the database's clock (_clock.ts); due times (retries) this node's.
  const [clock] = await within(
    sql`SELECT ${deps.clock(sql)} AS now`,
    deps.deadlineMs,
    "outbound claim",
  );
  const dbNow = Number(clock?.now);
  await doubtful.sweep(deps, dbNow, log);
  const until = doubtful.untilFor(dbNow, opts.leaseSeconds);
  // recipients_mx_due walks due recipients by next attempt; the first domains without a
  // live outbound lease are the candidates, the oldest due first.
  const rows = await within(
    sql`SELECT domain, min(next_attempt_at) AS first FROM recipients
      WHERE route = 'mx' AND status = 'queued' AND next_attempt_at <= ${opts.now}
        AND domain NOT IN (SELECT domain FROM outbound_leases WHERE lease_until > ${dbNow})
      GROUP BY domain ORDER BY first LIMIT ${CANDIDATES}`,
    deps.deadlineMs,
    "outbound claim",
  );
  for (const row of rows) {
    const domain = String(row.domain);
    // The upsert takes the row lock: of two nodes claiming one domain, one wins.
    const upsert = sql`INSERT INTO outbound_leases (domain, owner, lease_until)
      VALUES (${domain}, ${owner}, ${until})
      ON CONFLICT (domain) DO UPDATE SET owner = EXCLUDED.owner,
        lease_until = EXCLUDED.lease_until
      WHERE outbound_leases.lease_until <= ${deps.clock(sql)}
      RETURNING domain`;
    let taken: readonly unknown[];
    try {
      taken = await within(upsert, deps.deadlineMs, "outbound claim");
    } catch (err) {
      // Sent, maybe committed: taken back now, once it settles, and at the next claims.
      doubtful.add({ domain, owner, until });
      // Forgotten only past its expiry on the database's clock: `dbNow` is before it.
      const takeBack = () => void doubtful.sweep(deps, dbNow, log);
      takeBack();
      Promise.resolve(upsert).then(takeBack, takeBack);
      throw err;
    }
    if (taken.length === 0) continue;
    return new PgLease(
      [domain],
      {
        owner,
        leaseSeconds: opts.leaseSeconds,
        route: "mx",
        dueBy: opts.now,
      },
      deps,
      until,
    );
  }
  return undefined;
}

/**
 * The earliest next attempt among queued mx-route recipients, or undefined. Within the call
 * deadline (_deadline.ts): the outbound worker waits on it between claims, so on a silent
 * connection it stopped sending mail altogether; a late answer is a failed round it retries.
 */
export async function nextOutboundAtPg(deps: PgLeaseDeps): Promise<number | undefined> {
  const [row] = await within(
    deps.sql`SELECT min(next_attempt_at)::float8 AS at FROM recipients
      WHERE route = 'mx' AND status = 'queued'`,
    deps.deadlineMs,
    "next outbound attempt",
  );
  return row?.at === null || row?.at === undefined ? undefined : Number(row.at);
}
