/**
 * The ATRN side of the SQLite queue: claiming a set of domains' route-"atrn" recipients under
 * `domain_leases` rows (all domains or none), which domains are under a live ATRN lease, and
 * dropping a previous process's leases at start. The outbound worker's leases are
 * `_outbound.ts`'s. SQL stays in this folder.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { keepsOut, type LeaseDeps, liveLeases, SqliteLease, UnreleasedLeases } from "./_lease.ts";
import type { ClaimResult } from "./types.ts";

/** ATRN claims over one SQLite connection. */
export class SqliteAtrn {
  readonly #deps: LeaseDeps;
  readonly #unreleased = new UnreleasedLeases();
  readonly #leaseOf: StatementSync;
  readonly #take: StatementSync;
  readonly #anyQueued: StatementSync;
  readonly #live: (now: number) => Set<string>;

  constructor(deps: Omit<LeaseDeps, "unreleased" | "unreleasedOutbound">) {
    const { db } = deps;
    this.#deps = { ...deps, unreleased: this.#unreleased };
    this.#leaseOf = db.prepare("SELECT owner, lease_until FROM domain_leases WHERE domain = ?");
    this.#take = db.prepare(
      "INSERT INTO domain_leases (domain, owner, lease_until) VALUES (?, ?, ?) " +
        "ON CONFLICT(domain) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until",
    );
    this.#anyQueued = db.prepare(
      "SELECT 1 AS found FROM recipients WHERE status = 'queued' " +
        "AND domain IN (SELECT value FROM json_each(?)) AND route = 'atrn' LIMIT 1",
    );
    this.#live = liveLeases(db, "domain_leases");
  }

  /**
   * Leases all of `domains` (distinct) at `now`, or none; inside a transaction of the caller's.
   * Checks everything before writing anything (docs/protocol.md §1.7).
   */
  claim(
    domains: readonly string[],
    opts: { owner: string; leaseSeconds: number },
    now: number,
  ): ClaimResult {
    for (const domain of domains) {
      if (keepsOut(this.#leaseOf.get(domain), now, opts.owner, this.#unreleased)) {
        return { kind: "busy", domain };
      }
    }
    if (this.#anyQueued.get(JSON.stringify(domains)) === undefined) return { kind: "empty" };
    const until = now + opts.leaseSeconds * 1000;
    for (const domain of domains) this.#take.run(domain, opts.owner, until);
    return { kind: "claimed", lease: new SqliteLease(domains, opts, this.#deps) };
  }

  /** Domains under a live ATRN lease at `now`. */
  leased(now: number): Set<string> {
    return this.#live(now);
  }

  /** Drops every ATRN lease (a previous process's, at start); returns how many. */
  releaseAll(db: DatabaseSync): number {
    return Number(db.prepare("DELETE FROM domain_leases").run().changes);
  }

  /** No room to drop them (a full disk at start): claims take their domains as free; how many. */
  forgetAll(db: DatabaseSync): number {
    const owners = db.prepare("SELECT owner FROM domain_leases").all();
    for (const row of owners) this.#unreleased.add(String(row.owner));
    return owners.length;
  }
}
