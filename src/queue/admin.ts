/**
 * Operator queries and repairs behind `queue requeue`, `queue summary` and the per-user
 * figures of `user list|show`. Not used by sessions: each call is one short statement or one
 * transaction of its own, on its own connection, beside a running `serve` (WAL). SQL stays in
 * this folder; every method is Promise-shaped like the QueueStore. The PostgreSQL side, with the
 * same meaning, is pg/admin.ts; tests/cli/queue_admin_test.ts runs the commands on both.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  applyMigrations,
  checkSchemaToRead,
  inImmediateTransaction,
  openDatabase,
  openDatabaseToRead,
} from "./db.ts";
import { countField } from "./_rows.ts";
import { holdForAtrn } from "./_hold.ts";
import { QUEUE_MIGRATIONS } from "./_schema.ts";
import { UserStateStore } from "./user_state.ts";
import type { SpaceReserve } from "./space_reserve.ts";

/** One age column of `queue summary`: recipients waiting at most `maxAgeSeconds`. */
export interface AgeBucket {
  readonly label: string;
  /** Upper bound (inclusive); undefined for the last column, which has none. */
  readonly maxAgeSeconds: number | undefined;
}

/**
 * The columns of `queue summary`, like Postfix's `qshape` (each column counts what is older
 * than the previous bound and at most its own), but stretched to days: an ODMR customer polls
 * every few minutes, and mail that waits longer than that waits for a machine that is off.
 */
export const AGE_BUCKETS: readonly AgeBucket[] = [
  { label: "5m", maxAgeSeconds: 300 },
  { label: "15m", maxAgeSeconds: 900 },
  { label: "1h", maxAgeSeconds: 3_600 },
  { label: "4h", maxAgeSeconds: 14_400 },
  { label: "12h", maxAgeSeconds: 43_200 },
  { label: "1d", maxAgeSeconds: 86_400 },
  { label: "2d", maxAgeSeconds: 172_800 },
  { label: "4d", maxAgeSeconds: 345_600 },
  { label: "7d", maxAgeSeconds: 604_800 },
  { label: "7d+", maxAgeSeconds: undefined },
];

/** Waiting recipients of one domain, counted per AGE_BUCKETS column. */
export interface DomainAges {
  readonly domain: string;
  readonly recipients: number;
  /** One count per AGE_BUCKETS entry, in order. */
  readonly counts: readonly number[];
}

/** Mail waiting (deliverable: neither failed nor expired) for a set of domains. */
export interface WaitingTotals {
  /** Messages with at least one waiting recipient in the domains (each counted once). */
  readonly messages: number;
  readonly bytes: number;
  /** Arrival of the oldest of them (milliseconds since the epoch); undefined when none. */
  readonly oldestReceivedAt: number | undefined;
}

/** Which failed recipients `requeue` gives another chance. */
export type RequeueSelection =
  | { readonly kind: "messages"; readonly ids: readonly string[] }
  | { readonly kind: "domain"; readonly domain: string }
  | { readonly kind: "all" };

/** What `requeue` did. */
export interface RequeueResult {
  /** Failed recipients now queued again. */
  readonly recipients: number;
  /** Messages they belong to. */
  readonly messages: number;
  /** Expired recipients left alone (older than their max_age: they would expire at once). */
  readonly expiredSkipped: number;
  /** Requested message ids that are not in the queue (`messages` selection only). */
  readonly missingIds: readonly string[];
}

/** The operator's side of the queue. */
export interface QueueAdmin {
  /** Failed, unexpired recipients of the selection become `queued` (one transaction). */
  requeue(selection: RequeueSelection): Promise<RequeueResult>;
  /**
   * Waiting recipients per domain by age at `nowMs`, domains sorted by name: the mail waiting
   * for its owner's ATRN (route "atrn"). The outbound queue (route "mx", retried by the worker)
   * is not counted: `queue list` shows it with its next attempt.
   */
  ages(nowMs: number): Promise<DomainAges[]>;
  /**
   * The mail waiting for the ATRN of `domains` together (route "atrn"; a message in two of them
   * counts once). Route "mx" mail to those domains goes to their MX hosts instead.
   */
  waiting(domains: readonly string[]): Promise<WaitingTotals>;
  /** The last successful collection (ATRN) per user, ms since the epoch. */
  lastCollections(): Promise<Map<string, number>>;
  /** QueueStore.holdForAtrn for `user add|domains --add` (one transaction). */
  holdForAtrn(domains: readonly string[]): Promise<number>;
  close(): Promise<void>;
}

const WAITING = "r.status = 'queued' AND r.expired_at IS NULL";
const FAILED = "r.status = 'failed' AND r.expired_at IS NULL";
const EXPIRED = "r.expired_at IS NOT NULL";

/** QueueAdmin on the SQLite file of a data directory. */
export class SqliteQueueAdmin implements QueueAdmin {
  readonly #db: DatabaseSync;
  readonly #ownsDb: boolean;
  readonly #ages: StatementSync;
  readonly #waiting: StatementSync;
  readonly #messageExists: StatementSync;
  readonly #userState: UserStateStore;
  readonly #reserve: SpaceReserve | undefined;

  /**
   * Wraps an open database (applying the queue migrations; `readOnly`: only checking the schema,
   * db.ts `checkSchemaToRead`); the caller keeps ownership.
   */
  constructor(
    db: DatabaseSync,
    opts: { ownsDb?: boolean; readOnly?: boolean; reserve?: SpaceReserve } = {},
  ) {
    this.#db = db;
    this.#reserve = opts.reserve;
    this.#ownsDb = opts.ownsDb ?? false;
    (opts.readOnly === true ? checkSchemaToRead : applyMigrations)(db, "queue", QUEUE_MIGRATIONS);
    const cases = AGE_BUCKETS.map((b, i) =>
      b.maxAgeSeconds === undefined ? `ELSE ${i}` : `WHEN m.received_at >= ? THEN ${i}`
    ).join(" ");
    this.#ages = db.prepare(
      `SELECT r.domain AS domain, CASE ${cases} END AS bucket, count(*) AS n ` +
        `FROM recipients r JOIN messages m ON m.id = r.message_id WHERE ${WAITING} ` +
        "AND r.route = 'atrn' GROUP BY r.domain, bucket ORDER BY r.domain",
    );
    // Driven by the (domain, status) index: costs what the user's own mail costs.
    this.#waiting = db.prepare(
      "SELECT count(*) AS messages, coalesce(sum(size), 0) AS bytes, min(received_at) AS oldest " +
        "FROM messages WHERE id IN (SELECT r.message_id FROM recipients r " +
        `WHERE r.domain IN (SELECT value FROM json_each(?)) AND ${WAITING} AND r.route = 'atrn')`,
    );
    this.#messageExists = db.prepare("SELECT 1 AS found FROM messages WHERE id = ?");
    this.#userState = new UserStateStore(db);
  }

  /**
   * Opens `dataDir/odmr.db` on a connection of its own; `close()` closes it. `reserve`: serve's
   * space reserve (SpaceReserve.ofTool), given back when the open or a repair finds no room.
   */
  static open(
    dataDir: string,
    opts: { readOnly?: boolean; reserve?: SpaceReserve } = {},
  ): SqliteQueueAdmin {
    const { reserve } = opts;
    const open = () => openDatabase(dataDir);
    const db = opts.readOnly === true
      ? openDatabaseToRead(dataDir)
      : reserve === undefined
      ? open()
      : reserve.retry("queue requeue", open);
    try {
      return new SqliteQueueAdmin(db, {
        ownsDb: true,
        readOnly: opts.readOnly === true,
        ...(opts.readOnly === true || reserve === undefined ? {} : { reserve }),
      });
    } catch (err) {
      db.close();
      throw err;
    }
  }

  requeue(selection: RequeueSelection): Promise<RequeueResult> {
    const where = selection.kind === "messages"
      ? "r.message_id IN (SELECT value FROM json_each(?))"
      : selection.kind === "domain"
      ? "r.domain = ?"
      : "1 = 1";
    const args = selection.kind === "messages"
      ? [JSON.stringify([...new Set(selection.ids)])]
      : selection.kind === "domain"
      ? [selection.domain]
      : [];
    // A `serve` writing at the same time waits for this one (inImmediateTransaction). On a full
    // disk the repair may take serve's space reserve, as `queue delete` does.
    const run = () =>
      inImmediateTransaction(this.#db, () => {
        const missingIds = selection.kind === "messages"
          ? [...new Set(selection.ids)].filter((id) => this.#messageExists.get(id) === undefined)
          : [];
        const expired = this.#db.prepare(
          `SELECT count(*) AS n FROM recipients r WHERE ${where} AND ${EXPIRED}`,
        ).get(...args);
        const rows = this.#db.prepare(
          `UPDATE recipients AS r SET status = 'queued' WHERE ${where} AND ${FAILED} ` +
            "RETURNING id, message_id",
        ).all(...args);
        // A report still owed for the failure given another chance goes with it: kept, it came
        // on top of what the retry decides (a second report once the recipient expired).
        const owed = this.#db.prepare(
          "DELETE FROM report_pending WHERE message_id = ? AND recipient_id = ?",
        );
        for (const row of rows) owed.run(String(row.message_id), Number(row.id));
        const messages = new Set(rows.map((row) => String(row.message_id)));
        return {
          recipients: rows.length,
          messages: messages.size,
          expiredSkipped: countField(expired, "n"),
          missingIds,
        };
      });
    return Promise.resolve(
      this.#reserve === undefined ? run() : this.#reserve.retry("queue requeue", run),
    );
  }

  ages(nowMs: number): Promise<DomainAges[]> {
    const bounds = AGE_BUCKETS.flatMap((b) =>
      b.maxAgeSeconds === undefined ? [] : [nowMs - b.maxAgeSeconds * 1000]
    );
    const byDomain = new Map<string, number[]>();
    for (const row of this.#ages.all(...bounds)) {
      const { domain, bucket } = row;
      if (typeof domain !== "string" || typeof bucket !== "number") continue;
      let counts = byDomain.get(domain);
      if (counts === undefined) {
        counts = AGE_BUCKETS.map(() => 0);
        byDomain.set(domain, counts);
      }
      counts[bucket] = (counts[bucket] ?? 0) + countField(row, "n");
    }
    return Promise.resolve(
      [...byDomain].map(([domain, counts]) => ({
        domain,
        recipients: counts.reduce((a, b) => a + b, 0),
        counts,
      })),
    );
  }

  waiting(domains: readonly string[]): Promise<WaitingTotals> {
    const row: unknown = this.#waiting.get(JSON.stringify([...domains]));
    const oldest = typeof row === "object" && row !== null
      ? (row as Record<string, unknown>).oldest
      : undefined;
    return Promise.resolve({
      messages: countField(row, "messages"),
      bytes: countField(row, "bytes"),
      oldestReceivedAt: typeof oldest === "number" ? oldest : undefined,
    });
  }

  lastCollections(): Promise<Map<string, number>> {
    return Promise.resolve(this.#userState.lastAtrnSuccesses());
  }

  holdForAtrn(domains: readonly string[]): Promise<number> {
    // As requeue: a running serve waits for it, and it may take serve's reserve on a full disk.
    const run = () => inImmediateTransaction(this.#db, () => holdForAtrn(this.#db, domains));
    return Promise.resolve(
      this.#reserve === undefined ? run() : this.#reserve.retry("user domains", run),
    );
  }

  close(): Promise<void> {
    if (this.#ownsDb && this.#db.isOpen) this.#db.close();
    return Promise.resolve();
  }
}
