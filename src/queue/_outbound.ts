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

/** Rows remembered at most: past it the oldest one only ends at its expiry. */
const MAX_UNRELEASED = 1000;

/**
 * Outbound lease rows whose release failed (a full disk: the DELETE needs room in the WAL too):
 * their batches are over, so the next claim deletes them first; before, the destination waited
 * for `queue.lease_time`. By row, not by owner as ATRN's UnreleasedLeases: every batch of the
 * worker has the same owner. A row is named with its `lease_until`, read when the release
 * failed, so that a later claim of the same domain (a new `lease_until`) is never deleted.
 */
export class UnreleasedOutbound {
  readonly #rows = new Map<string, { owner: string; until: number }>();
  readonly #leaseOf: StatementSync;
  readonly #delete: StatementSync;

  constructor(db: DatabaseSync) {
    this.#leaseOf = db.prepare(
      "SELECT lease_until FROM outbound_leases WHERE domain = ? AND owner = ?",
    );
    this.#delete = db.prepare(
      "DELETE FROM outbound_leases WHERE domain = ? AND owner = ? AND lease_until = ?",
    );
  }

  /** The release of `owner`'s lease on `domains` failed (a read: it works on a full disk). */
  add(domains: readonly string[], owner: string): void {
    for (const domain of domains) {
      const until: unknown = this.#leaseOf.get(domain, owner)?.lease_until;
      if (typeof until !== "number") continue;
      this.#rows.delete(domain);
      this.#rows.set(domain, { owner, until });
      if (this.#rows.size > MAX_UNRELEASED) {
        this.#rows.delete(this.#rows.keys().next().value as string);
      }
    }
  }

  /** Inside a claim's transaction: deletes those rows; `done` once it committed. */
  deleteAll(): { done: () => void } {
    const taken = [...this.#rows];
    for (const [domain, { owner, until }] of taken) this.#delete.run(domain, owner, until);
    return {
      done: () => {
        for (const [domain, row] of taken) {
          if (this.#rows.get(domain) === row) this.#rows.delete(domain);
        }
      },
    };
  }
}

/** Outbound claims over one SQLite connection. */
export class SqliteOutbound {
  readonly #deps: LeaseDeps;
  readonly #dueDomain: StatementSync;
  readonly #take: StatementSync;
  readonly #next: StatementSync;
  readonly #live: (now: number) => Set<string>;
  readonly #unreleased: UnreleasedOutbound;

  constructor(deps: Omit<LeaseDeps, "unreleasedOutbound">) {
    const { db } = deps;
    this.#unreleased = new UnreleasedOutbound(db);
    this.#deps = { ...deps, unreleasedOutbound: this.#unreleased };
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
    let freed: { done: () => void } | undefined;
    const lease = group.exclusive((): Lease | undefined => {
      freed = this.#unreleased.deleteAll();
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
    freed?.done();
    return lease;
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

  /** No room to drop them (a full disk at start): the next claim deletes them; how many. */
  forgetAll(db: DatabaseSync): number {
    const rows = db.prepare("SELECT domain, owner FROM outbound_leases").all();
    for (const row of rows) this.#unreleased.add([String(row.domain)], String(row.owner));
    return rows.length;
  }
}
