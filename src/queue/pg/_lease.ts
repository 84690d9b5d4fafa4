/**
 * A lease on PostgreSQL: `domain_leases` rows owned by one session of one node. Lists the
 * leased domains' queued recipients, streams bodies, and settles results in the group
 * transaction. It does not take the lease; `PgQueueStore.claim()` does.
 */
import { toQueuedRecipient } from "../_rows.ts";
import type { Lease, QueuedMessage, Settlement } from "../types.ts";
import type { Sql, Tx } from "./connect.ts";
import type { PgGroupCommit } from "./_group.ts";
import type { PgReader } from "./_reader.ts";

/** What a lease needs from its store. */
export interface PgLeaseDeps {
  readonly sql: Sql;
  readonly group: PgGroupCommit;
  readonly reader: PgReader;
  readonly now: () => number;
}

/** A claimed set of domains. */
export class PgLease implements Lease {
  readonly domains: readonly string[];
  readonly #owner: string;
  readonly #leaseMs: number;
  readonly #deps: PgLeaseDeps;

  constructor(
    domains: readonly string[],
    opts: { owner: string; leaseSeconds: number },
    deps: PgLeaseDeps,
  ) {
    this.domains = [...domains];
    this.#owner = opts.owner;
    this.#leaseMs = opts.leaseSeconds * 1000;
    this.#deps = deps;
  }

  async *messages(): AsyncGenerator<QueuedMessage> {
    for await (const { message, recipients } of this.#deps.reader.inDomains(this.domains, true)) {
      yield { ...message, recipients: recipients.map((r) => toQueuedRecipient(r, "delivering")) };
    }
  }

  readBody(messageId: string): AsyncIterable<Uint8Array> {
    return this.#deps.reader.body(messageId);
  }

  async renew(): Promise<boolean> {
    const until = this.#deps.now() + this.#leaseMs;
    const rows = await this.#deps.sql`UPDATE domain_leases SET lease_until = ${until}
      WHERE domain = ANY(${this.domains as string[]}::text[]) AND owner = ${this.#owner}
      RETURNING domain`;
    return rows.length === this.domains.length;
  }

  settle(results: readonly Settlement[]): Promise<void> {
    if (results.length === 0) return Promise.resolve();
    const delivered = results.filter((r) => r.outcome === "delivered").map((r) => r.recipientId);
    const deferred = results.filter((r) => r.outcome === "deferred");
    const failed = results.filter((r) => r.outcome === "failed");
    // Idempotent per recipient: a delivered one that is already gone changes nothing.
    return this.#deps.group.run(async (tx: Tx) => {
      if (deferred.length > 0) {
        await tx`UPDATE recipients r SET attempts = r.attempts + 1, last_reply = u.reply
          FROM unnest(${deferred.map((d) => d.recipientId)}::bigint[],
            ${deferred.map((d) => d.reply)}::text[]) AS u(id, reply)
          WHERE r.id = u.id`;
      }
      if (failed.length > 0) {
        await tx`UPDATE recipients r SET status = 'failed', attempts = r.attempts + 1,
            last_reply = u.reply
          FROM unnest(${failed.map((d) => d.recipientId)}::bigint[],
            ${failed.map((d) => d.reply)}::text[]) AS u(id, reply)
          WHERE r.id = u.id`;
      }
      if (delivered.length === 0) return;
      const gone = await tx`DELETE FROM recipients WHERE id = ANY(${delivered}::bigint[])
        RETURNING message_id`;
      const touched = [...new Set(gone.map((g) => String(g.message_id)))];
      if (touched.length === 0) return;
      const empty = await tx`DELETE FROM messages m WHERE m.id = ANY(${touched}::text[])
        AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id) RETURNING id`;
      if (empty.length === 0) return;
      await tx`DELETE FROM message_chunks WHERE message_id = ANY(${
        empty.map((e) => String(e.id))
      }::text[])`;
    });
  }

  async release(): Promise<void> {
    await this.#deps.sql`DELETE FROM domain_leases
      WHERE domain = ANY(${this.domains as string[]}::text[]) AND owner = ${this.#owner}`;
  }
}
