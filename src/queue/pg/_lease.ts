/**
 * A lease on PostgreSQL, owned by one session of one node: `domain_leases` rows for ATRN (the
 * domains' queued route-"atrn" recipients), an `outbound_leases` row for the outbound worker
 * (the domain's due route-"mx" recipients). Lists those recipients, streams bodies, and
 * settles results in the group transaction. It does not take the lease;
 * `claimAtrnPg()` (_atrn.ts) and `claimOutboundPg()` (_outbound.ts) do.
 */
import { leasedMessages, LeaseTerms } from "../_lease_terms.ts";
import type { LeaseOptions } from "../_rows.ts";
import type { Lease, QueuedMessage, Settlement } from "../types.ts";
import type { LeaseClock } from "./_clock.ts";
import type { Sql, Tx } from "./connect.ts";
import { deleteEmptied, lockMessages, messageIdsOf } from "./_emptied.ts";
import type { PgGroupCommit } from "./_group.ts";
import type { PgReader } from "./_reader.ts";
import { isStatementTimeout, PgDeadlineError, within } from "./_deadline.ts";
import { isConnectionLoss } from "./_errors.ts";
import type { PendingReleases } from "./_release_later.ts";

/** What a lease needs from its store. */
export interface PgLeaseDeps {
  readonly sql: Sql;
  readonly group: PgGroupCommit;
  readonly reader: PgReader;
  /** Lease times (the database's clock, _clock.ts). */
  readonly clock: LeaseClock;
  /** How long a renewal or a release may wait for PostgreSQL (see _deadline.ts). */
  readonly deadlineMs: number;
  /** Where a release that failed is tried again (_release_later.ts); none: left to expire. */
  readonly pendingReleases?: PendingReleases;
}

/**
 * The domains under a live lease of `table` now, on the database's clock (_clock.ts), within
 * the call deadline: `domain_leases` (ATRN) or `outbound_leases`.
 */
export async function liveLeasesPg(
  deps: PgLeaseDeps,
  table: "domain_leases" | "outbound_leases",
): Promise<Set<string>> {
  const { sql } = deps;
  const rows = await within(
    table === "domain_leases"
      ? sql`SELECT domain FROM domain_leases WHERE lease_until > ${deps.clock(sql)}`
      : sql`SELECT domain FROM outbound_leases WHERE lease_until > ${deps.clock(sql)}`,
    deps.deadlineMs,
    table === "domain_leases" ? "leases" : "outbound leases",
  );
  return new Set(rows.map((r) => String(r.domain)));
}

/** A claimed set of domains. */
export class PgLease implements Lease {
  readonly domains: readonly string[];
  readonly #terms: LeaseTerms;
  readonly #deps: PgLeaseDeps;
  /** When the lease runs out by itself at the latest (performance.now(): claim or renewal). */
  #heldUntil: number;
  /** The latest `lease_until` this lease wrote and saw answered (the database's clock). */
  #lastUntil: number;

  /** `until`: the `lease_until` its claim wrote (the latest of its rows). */
  constructor(
    domains: readonly string[],
    opts: LeaseOptions,
    deps: PgLeaseDeps,
    until: number,
  ) {
    this.#terms = new LeaseTerms(domains, opts);
    this.domains = this.#terms.domains;
    this.#deps = deps;
    this.#heldUntil = performance.now() + this.#terms.leaseMs;
    this.#lastUntil = until;
  }

  messages(): AsyncGenerator<QueuedMessage> {
    return leasedMessages(this.#deps.reader.inDomains(this.domains, true, this.#terms.view));
  }

  readBody(messageId: string): AsyncIterable<Uint8Array> {
    return this.#deps.reader.body(messageId);
  }

  async renew(): Promise<boolean> {
    const { sql, clock } = this.#deps;
    const table = sql(this.#terms.table);
    const asked = performance.now();
    // On the database's clock, like the claims (_clock.ts).
    const rows = await within(
      sql`UPDATE ${table} SET lease_until = ${clock(sql)} + ${this.#terms.leaseMs}::bigint
        WHERE domain = ANY(${this.domains as string[]}::text[]) AND owner = ${this.#terms.owner}
        RETURNING domain, lease_until::float8 AS until`,
      this.#deps.deadlineMs,
      "lease renewal",
    );
    if (rows.length > 0) this.#heldUntil = asked + this.#terms.leaseMs;
    for (const r of rows) this.#lastUntil = Math.max(this.#lastUntil, Number(r.until));
    return rows.length === this.domains.length;
  }

  settle(results: readonly Settlement[]): Promise<void> {
    if (results.length === 0) return Promise.resolve();
    const delivered = results.filter((r) => r.outcome === "delivered");
    const deferred = results.filter((r) => r.outcome === "deferred");
    const failed = results.filter((r) => r.outcome === "failed");
    // Idempotent per recipient: a delivered one that is already gone changes nothing. Each
    // recipient is named by its id and its message's, as in the SQLite lease (bigserial ids are
    // not reused, but the contract is one: types.ts `Settlement.messageId`).
    return this.#deps.group.run(async (tx: Tx) => {
      // Messages first, before any of their recipients' rows (the order of _emptied.ts).
      await lockMessages(tx, [...new Set(delivered.map((d) => d.messageId))]);
      if (deferred.length > 0) {
        // retryAt applies to the mx route only (ATRN waits for the owner's next ATRN).
        await tx`UPDATE recipients r SET attempts = r.attempts + 1, last_reply = u.reply,
            next_attempt_at = CASE WHEN r.route = 'mx'
              THEN coalesce(u.retry_at, r.next_attempt_at) ELSE r.next_attempt_at END
          FROM unnest(${deferred.map((d) => d.recipientId)}::bigint[],
            ${deferred.map((d) => d.messageId)}::text[],
            ${deferred.map((d) => d.reply)}::text[],
            ${deferred.map((d) => d.retryAt ?? null)}::bigint[])
            AS u(id, message_id, reply, retry_at)
          WHERE r.id = u.id AND r.message_id = u.message_id`;
      }
      if (failed.length > 0) {
        // Its report is pending in the same transaction, until bounce.ts (or maintenance,
        // after a failed write or a crash) queued it (schema step 6).
        await tx`WITH f AS (UPDATE recipients r SET status = 'failed', attempts = r.attempts + 1,
            last_reply = u.reply
          FROM unnest(${failed.map((d) => d.recipientId)}::bigint[],
            ${failed.map((d) => d.messageId)}::text[],
            ${failed.map((d) => d.reply)}::text[]) AS u(id, message_id, reply)
          WHERE r.id = u.id AND r.message_id = u.message_id
          RETURNING r.message_id, r.id)
          INSERT INTO report_pending (message_id, recipient_id) SELECT message_id, id FROM f
          ON CONFLICT DO NOTHING`;
      }
      if (delivered.length === 0) return;
      const gone = await tx`DELETE FROM recipients r
        USING unnest(${delivered.map((d) => d.recipientId)}::bigint[],
          ${delivered.map((d) => d.messageId)}::text[]) AS u(id, message_id)
        WHERE r.id = u.id AND r.message_id = u.message_id
        RETURNING r.message_id`;
      await deleteEmptied(tx, messageIdsOf(gone));
      // Asynchronous commit (see _group.ts): a lost settlement only sends its message again.
    }, "normal");
  }

  /**
   * Deletes the lease. One that misses its deadline (or is ended by the server's statement
   * timeout just below it) or loses its connection (also one dropped under it past another
   * call's deadline, _deadline.ts) is tried once more: the owner is this session, so no later
   * ATRN could take the domain over, and it stayed busy until the lease ran out (`lease_time`,
   * 5 min by default). Deleting twice is harmless. Past a second failure (or a first one of
   * another kind) it is thrown, and tried again in the background until the lease would have
   * run out (_release_later.ts): the database back, the domain is free again.
   */
  async release(): Promise<void> {
    try {
      try {
        await this.#releaseOnce();
      } catch (err) {
        const isRetried = err instanceof PgDeadlineError || isStatementTimeout(err) ||
          isConnectionLoss(err);
        if (!isRetried) throw err;
        await this.#releaseOnce();
      }
    } catch (err) {
      // Later, only rows this lease wrote: the outbound worker's owner is one per process,
      // and a lease it claims for the same domain meanwhile has a later expiry (_outbound.ts).
      const until = this.#lastUntil;
      this.#deps.pendingReleases?.add(() => this.#releaseOnce(until), this.#heldUntil, {
        route: this.#terms.route,
        domains: this.domains.join(","),
      });
      throw err;
    }
  }

  /** Deletes the lease's rows (those written by `until` at the latest, when given). */
  async #releaseOnce(until?: number): Promise<void> {
    const table = this.#deps.sql(this.#terms.table);
    await within(
      this.#deps.sql`DELETE FROM ${table}
        WHERE domain = ANY(${this.domains as string[]}::text[]) AND owner = ${this.#terms.owner}
          AND (${until === undefined} OR lease_until <= ${until ?? 0})`,
      this.#deps.deadlineMs,
      "lease release",
    );
  }
}
