/**
 * The outbound side of the SQLite queue: claiming one due destination domain of route-"mx"
 * recipients under an `outbound_leases` row (a lease namespace apart from ATRN's
 * `domain_leases`), the earliest next attempt (the worker's sleep), and which domains are
 * under a live outbound lease. SQL stays in this folder.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { GroupTransaction } from "./_group_tx.ts";
import { type LeaseDeps, liveLeases, SqliteLease } from "./_lease.ts";
import type { Lease, OutboundClaimOptions } from "./types.ts";

/** Outbound claims over one SQLite connection. */
export class SqliteOutbound {
  readonly #deps: LeaseDeps;
  readonly #dueDomain: StatementSync;
  readonly #take: StatementSync;
  readonly #next: StatementSync;
  readonly #live: (now: number) => Set<string>;

  constructor(deps: LeaseDeps) {
    this.#deps = deps;
    const { db } = deps;
    // The partial index recipients_mx_due walks due recipients by next attempt: the first one
    // whose domain has no live outbound lease names the domain to claim.
    this.#dueDomain = db.prepare(
      "SELECT domain FROM recipients INDEXED BY recipients_mx_due " +
        "WHERE route = 'mx' AND status = 'queued' AND next_attempt_at <= ?1 " +
        "AND domain NOT IN (SELECT domain FROM outbound_leases WHERE lease_until > ?1) " +
        "ORDER BY next_attempt_at LIMIT 1",
    );
    this.#take = db.prepare(
      "INSERT INTO outbound_leases (domain, owner, lease_until) VALUES (?, ?, ?) " +
        "ON CONFLICT(domain) DO UPDATE SET owner = excluded.owner, " +
        "lease_until = excluded.lease_until",
    );
    this.#next = db.prepare(
      "SELECT min(next_attempt_at) AS at FROM recipients INDEXED BY recipients_mx_due " +
        "WHERE route = 'mx' AND status = 'queued'",
    );
    this.#live = liveLeases(db, "outbound_leases");
  }

  /** Leases one due destination, or undefined when none is due (one transaction). */
  claim(opts: OutboundClaimOptions): Lease | undefined {
    const group: GroupTransaction = this.#deps.group;
    return group.exclusive((): Lease | undefined => {
      const domain: unknown = this.#dueDomain.get(opts.now)?.domain;
      if (typeof domain !== "string") return undefined;
      this.#take.run(domain, opts.owner, opts.now + opts.leaseSeconds * 1000);
      return new SqliteLease([domain], {
        owner: opts.owner,
        leaseSeconds: opts.leaseSeconds,
        route: "mx",
        dueBy: opts.now,
      }, this.#deps);
    });
  }

  /** The earliest next attempt among queued mx-route recipients, or undefined. */
  nextAt(): number | undefined {
    const at: unknown = this.#next.get()?.at;
    return typeof at === "number" ? at : undefined;
  }

  /** Domains under a live outbound lease at `now`. */
  leased(now: number): Set<string> {
    return this.#live(now);
  }

  /** Drops every outbound lease (a previous process's, at start); returns how many. */
  releaseAll(db: DatabaseSync): number {
    return Number(db.prepare("DELETE FROM outbound_leases").run().changes);
  }
}
