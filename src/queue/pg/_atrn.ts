/**
 * The ATRN side of the PostgreSQL queue: claiming a set of domains' route-"atrn" recipients
 * under `domain_leases` rows (all domains or none; row locks keep one session per domain
 * cluster-wide). The outbound worker's leases are _outbound.ts's. SQL stays in this folder.
 */
import type { Logger } from "../../observe/log.ts";
import type { ClaimResult } from "../types.ts";
import { transactionWithin, within } from "./_deadline.ts";
import { PgLease, type PgLeaseDeps } from "./_lease.ts";

/** Thrown inside a claim's transaction to roll it back with an answer. */
class ClaimRefused extends Error {
  readonly result: ClaimResult;
  constructor(result: ClaimResult) {
    super("claim refused");
    this.result = result;
  }
}

/**
 * Leases all of `domains` for `owner` (`node|session`), or none: busy if another owner holds a
 * live lease on one of them, empty if none has queued mail. Within the call deadline.
 */
export async function claimAtrnPg(
  deps: PgLeaseDeps,
  domains: readonly string[],
  owner: string,
  leaseSeconds: number,
  log: Logger,
): Promise<ClaimResult> {
  const { sql } = deps;
  // Sorted: two claims over the same domains lock their rows in one order (no deadlock).
  const wanted = [...new Set(domains)].sort();
  const leaseMs = leaseSeconds * 1000;
  // The expiries the upserts wrote (the database's clock, _clock.ts).
  const untils: number[] = [];
  // Past its deadline (the ATRN was answered 451) a claim whose COMMIT was sent may still
  // commit: its rows are deleted, by this owner and expiry (a retry of the same session has
  // another), so that the domain is not held until the lease ends. A COMMIT is sent only
  // once every upsert answered: then `untils` holds their expiries.
  const undo = () => {
    if (untils.length === 0) return;
    within(
      sql`DELETE FROM domain_leases
        WHERE owner = ${owner} AND lease_until = ANY(${untils}::bigint[])`,
      deps.deadlineMs,
      "undo of a late claim",
    ).catch((err: unknown) => {
      log.warn("lease_release_failed", { owner, error: String(err) });
    });
  };
  try {
    return await transactionWithin(sql, deps.deadlineMs, "claim", async (tx) => {
      for (const domain of wanted) {
        // The upsert takes the row lock; a concurrent claim waits for our commit, then
        // re-reads the row and finds it live and not its own: busy (RFC 2645 §5.2.1: 451).
        // Times on the database's clock: nodes agree whatever their own (_clock.ts).
        const taken = await tx`INSERT INTO domain_leases (domain, owner, lease_until)
          VALUES (${domain}, ${owner}, ${deps.clock(tx)} + ${leaseMs}::bigint)
          ON CONFLICT (domain) DO UPDATE SET owner = EXCLUDED.owner,
            lease_until = EXCLUDED.lease_until
          WHERE domain_leases.owner = EXCLUDED.owner
            OR domain_leases.lease_until <= ${deps.clock(tx)}
          RETURNING lease_until`;
        if (taken.length === 0) throw new ClaimRefused({ kind: "busy", domain });
        untils.push(Number(taken[0]?.lease_until));
      }
      const any = await tx`SELECT 1 FROM recipients
        WHERE domain = ANY(${wanted}::text[]) AND status = 'queued' AND route = 'atrn' LIMIT 1`;
      if (any.length === 0) throw new ClaimRefused({ kind: "empty" });
      const lease = new PgLease(wanted, { owner, leaseSeconds }, deps, Math.max(...untils));
      return { kind: "claimed", lease } satisfies ClaimResult as ClaimResult;
    }, undo);
  } catch (err) {
    if (err instanceof ClaimRefused) return err.result;
    throw err;
  }
}
