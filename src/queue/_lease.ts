/**
 * A lease over some domains, owned by one session: `domain_leases` rows for ATRN (the
 * domains' queued route-"atrn" recipients), an `outbound_leases` row for the outbound worker
 * (the domain's due route-"mx" recipients). Lists those recipients, streams bodies and
 * records per-recipient results in the group transaction. It does not take the lease;
 * `SqliteAtrn.claim()` (_atrn.ts) and `SqliteOutbound.claim()` (_outbound.ts) do.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { GroupTransaction } from "./_group_tx.ts";
import { leasedMessages, LeaseTerms } from "./_lease_terms.ts";
import type { LeaseOptions } from "./_rows.ts";
import type { QueueReader } from "./_reader.ts";
import type { Lease, QueuedMessage, Settlement } from "./types.ts";
import { settled } from "./_settled.ts";
import { onDisk, type UnsyncedMessages } from "./_unsynced.ts";
import type { SpaceReserve } from "./space_reserve.ts";
import type { UnreleasedOutbound } from "./_outbound.ts";

/** What a lease needs from its store. */
export interface LeaseDeps {
  readonly db: DatabaseSync;
  readonly group: GroupTransaction;
  readonly reader: QueueReader;
  readonly now: () => number;
  /** Committed messages whose sync is running: handed out only once on disk (_unsynced.ts). */
  readonly unsynced?: UnsyncedMessages;
  /** Told the owner of an ATRN lease whose release failed (see UnreleasedLeases). */
  readonly unreleased?: UnreleasedLeases;
  /** Told the rows of an outbound lease whose release failed (see UnreleasedOutbound). */
  readonly unreleasedOutbound?: UnreleasedOutbound;
  /** serve's space reserve: given back when a write of the lease fails for lack of room. */
  readonly reserve?: SpaceReserve | undefined;
}

/** Owners remembered at most: past it the oldest one's rows only end at their expiry. */
const MAX_UNRELEASED = 1000;

/**
 * ATRN leases whose release failed (a full disk: the DELETE needs room in the WAL too). Their
 * sessions are over, so a claim takes their domains as free (`keepsOut`) and overwrites their
 * rows; before, the domains stayed "busy" (451) for `queue.lease_time` after space returned.
 * In memory: after a restart serve drops every lease of a dead process anyway.
 */
export class UnreleasedLeases {
  readonly #owners = new Set<string>();

  add(owner: string): void {
    this.#owners.add(owner);
    if (this.#owners.size > MAX_UNRELEASED) {
      this.#owners.delete(this.#owners.values().next().value as string);
    }
  }

  has(owner: unknown): boolean {
    return this.#owners.size > 0 && typeof owner === "string" && this.#owners.has(owner);
  }
}

/**
 * Whether a `domain_leases` row (owner, lease_until) keeps a claim by `claimant` out at `now`.
 * An unreadable row counts as live: never risk two sessions on one domain.
 */
export function keepsOut(
  row: unknown,
  now: number,
  claimant: string,
  unreleased: UnreleasedLeases,
): boolean {
  if (typeof row !== "object" || row === null) return false;
  const owner = "owner" in row ? row.owner : undefined;
  const until = "lease_until" in row ? row.lease_until : undefined;
  if (owner === claimant || unreleased.has(owner)) return false;
  return typeof until !== "number" || until > now;
}

/**
 * Settled messages whose body chunks wait to be deleted together. Deleting a 4 KB body in
 * every settle commit made that commit several times larger (chunk rows, overflow and freelist
 * pages) and the provider's drain about 1.45× slower (#13). Nothing reads the chunks of a
 * deleted message; a crash leaves them as orphans, which the next start removes.
 */
const CHUNK_SWEEP_MESSAGES = 256;

/** The domains under a live lease of `table` at a time `now` (one statement, prepared once). */
export function liveLeases(
  db: DatabaseSync,
  table: "domain_leases" | "outbound_leases",
): (now: number) => Set<string> {
  const live = db.prepare(`SELECT domain FROM ${table} WHERE lease_until > ?`);
  return (now) => {
    const out = new Set<string>();
    for (const row of live.all(now)) {
      const domain: unknown = row.domain;
      if (typeof domain === "string") out.add(domain);
    }
    return out;
  };
}

/** A claimed set of domains. */
export class SqliteLease implements Lease {
  readonly domains: readonly string[];
  readonly #terms: LeaseTerms;
  readonly #deps: LeaseDeps;
  readonly #renew: StatementSync;
  readonly #release: StatementSync;
  readonly #deleteEmptied: StatementSync;
  readonly #deleteRecipients: StatementSync;
  readonly #deferRecipient: StatementSync;
  readonly #failRecipient: StatementSync;
  readonly #reportPending: StatementSync;
  readonly #deleteChunksIfGone: StatementSync;
  /** Messages settled away whose chunks are not deleted yet (see CHUNK_SWEEP_MESSAGES). */
  #gone: string[] = [];

  constructor(
    domains: readonly string[],
    opts: LeaseOptions,
    deps: LeaseDeps,
  ) {
    this.#terms = new LeaseTerms(domains, opts);
    this.domains = this.#terms.domains;
    this.#deps = deps;
    const { db } = deps;
    const table = this.#terms.table;
    const mine = "domain IN (SELECT value FROM json_each(?)) AND owner = ?";
    this.#renew = db.prepare(`UPDATE ${table} SET lease_until = ? WHERE ${mine}`);
    this.#release = db.prepare(`DELETE FROM ${table} WHERE ${mine}`);
    // A batch's delivered recipients in two statements, not two per message (about half again
    // as much CPU, #13): first their messages that keep no other recipient (the cascade takes
    // the recipients; the messages' own counter triggers count them out, cheaper than each
    // recipient's), then the delivered recipients of messages that stay. ?1 is a JSON array of
    // [recipient id, message id] pairs: every settle statement names the recipient by both, as
    // a row id alone may have gone to a newer message's recipient since it was listed
    // (types.ts `Settlement.messageId`).
    const pairs = "SELECT value ->> 0, value ->> 1 FROM json_each(?1)";
    this.#deleteEmptied = db.prepare(
      "DELETE FROM messages WHERE id IN (SELECT value ->> 1 FROM json_each(?1)) " +
        "AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = messages.id " +
        `AND (r.id, r.message_id) NOT IN (${pairs})) RETURNING id`,
    );
    // The join looks each pair up by row id (the primary key), then checks its message.
    this.#deleteRecipients = db.prepare(
      "DELETE FROM recipients WHERE id IN (SELECT r.id FROM json_each(?1) j " +
        "JOIN recipients r ON r.id = j.value ->> 0 AND r.message_id = j.value ->> 1)",
    );
    // retryAt applies to the mx route only (an ATRN recipient waits for its owner's next ATRN).
    this.#deferRecipient = db.prepare(
      "UPDATE recipients SET attempts = attempts + 1, last_reply = ?, next_attempt_at = " +
        "CASE WHEN route = 'mx' THEN coalesce(?, next_attempt_at) ELSE next_attempt_at END " +
        "WHERE id = ? AND message_id = ?",
    );
    this.#failRecipient = db.prepare(
      "UPDATE recipients SET status = 'failed', attempts = attempts + 1, last_reply = ? " +
        "WHERE id = ? AND message_id = ?",
    );
    // In the same transaction as the failure: its report is pending until bounce.ts queued it
    // (or maintenance does, after a failed write or a crash; schema step 11).
    this.#reportPending = db.prepare(
      "INSERT OR IGNORE INTO report_pending (message_id, recipient_id) VALUES (?, ?)",
    );
    const each = "IN (SELECT value FROM json_each(?1))";
    this.#deleteChunksIfGone = db.prepare(
      `DELETE FROM message_chunks WHERE message_id ${each} AND message_id NOT IN ` +
        `(SELECT id FROM messages WHERE id ${each})`,
    );
  }

  messages(): AsyncGenerator<QueuedMessage> {
    const found = this.#deps.reader.messages({
      domains: this.domains,
      queuedOnly: true,
      ...this.#terms.view,
    });
    return leasedMessages(onDisk(found, this.#deps.unsynced));
  }

  readBody(messageId: string): Generator<Uint8Array> {
    return this.#deps.reader.body(messageId);
  }

  renew(): Promise<boolean> {
    return settled(() => {
      const until = this.#deps.now() + this.#terms.leaseMs;
      const changed = this.#exclusive(
        "lease renewal",
        () => this.#renew.run(until, JSON.stringify(this.domains), this.#terms.owner).changes,
      );
      return Number(changed) === this.domains.length;
    });
  }

  settle(results: readonly Settlement[]): Promise<void> {
    if (results.length === 0) return Promise.resolve();
    const reserve = this.#deps.reserve;
    try {
      const write = () => this.#write(results);
      if (reserve === undefined) write();
      else reserve.retry("settlement", write);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#deps.group.whenDurable().catch((err) => {
      // Its COMMIT found no room and rolled it back: once more, with the reserve's room.
      if (reserve === undefined || !reserve.isFull(err) || !reserve.giveBack("settlement", err)) {
        throw err;
      }
      this.#write(results);
      return this.#deps.group.whenDurable();
    });
  }

  /** A settle batch's statements, in the shared transaction. */
  #write(results: readonly Settlement[]): void {
    this.#deps.group.write(undefined, () => {
      const delivered: [number, string][] = [];
      for (const r of results) {
        switch (r.outcome) {
          case "delivered":
            delivered.push([r.recipientId, r.messageId]);
            break;
          case "deferred":
            this.#deferRecipient.run(r.reply, r.retryAt ?? null, r.recipientId, r.messageId);
            break;
          case "failed":
            if (this.#failRecipient.run(r.reply, r.recipientId, r.messageId).changes > 0) {
              this.#reportPending.run(r.messageId, r.recipientId);
            }
            break;
          default: {
            const never: never = r.outcome;
            throw new Error(`Unknown settle outcome ${String(never)}`);
          }
        }
      }
      if (delivered.length > 0) {
        const ids = JSON.stringify(delivered);
        for (const row of this.#deleteEmptied.all(ids)) {
          const id: unknown = row.id;
          if (typeof id === "string") this.#gone.push(id);
        }
        this.#deleteRecipients.run(ids);
      }
      if (this.#gone.length >= CHUNK_SWEEP_MESSAGES) this.#sweepChunks();
      // Not fsynced (see _group_tx.ts): a settlement lost to a power failure only sends its
      // message again; the message itself was committed at FULL before its 250.
    }, "normal");
  }

  /** `fn` in a transaction of its own; once more after giving the reserve back if no room. */
  #exclusive<T>(what: string, fn: () => T): T {
    const run = () => this.#deps.group.exclusive(fn);
    return this.#deps.reserve === undefined ? run() : this.#deps.reserve.retry(what, run);
  }

  /**
   * Deletes the chunks of the messages settled away so far. Inside a group write; the guard
   * keeps a body whose message row came back (its settle commit failed and rolled back).
   */
  #sweepChunks(): void {
    this.#deleteChunksIfGone.run(JSON.stringify(this.#gone));
    this.#gone = [];
  }

  release(): Promise<void> {
    return settled(() => {
      try {
        if (this.#gone.length > 0) this.#deps.group.write(undefined, () => this.#sweepChunks());
        this.#exclusive(
          "lease release",
          () => this.#release.run(JSON.stringify(this.domains), this.#terms.owner),
        );
      } catch (err) {
        // Its session is over all the same: the next claim takes its domains as free.
        if (this.#terms.table === "domain_leases") this.#deps.unreleased?.add(this.#terms.owner);
        else this.#deps.unreleasedOutbound?.add(this.domains, this.#terms.owner);
        throw err;
      }
    });
  }
}
