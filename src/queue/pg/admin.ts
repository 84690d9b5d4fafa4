/**
 * The operator queries of src/queue/admin.ts (`queue requeue|summary`, the figures of `user
 * list|show`) on the PostgreSQL database every node shares, with the same meaning as on SQLite:
 * waiting is `queued` and not expired, a requeue touches failed recipients that have not
 * expired, in one transaction. Runs on a small pool of its own, beside the nodes. Every call
 * answers within its deadline (PG_CALL_DEADLINE_MS by default, _deadline.ts), and the pool's
 * `statement_timeout` is just below it: a server gone silent fails the command, with its
 * reason, instead of holding it for good.
 */
import {
  AGE_BUCKETS,
  type DomainAges,
  type QueueAdmin,
  type RequeueResult,
  type RequeueSelection,
  type WaitingTotals,
} from "../admin.ts";
import { connectPostgres, type PgConnectOptions, type Sql, type Tx } from "./connect.ts";
import {
  PG_CALL_DEADLINE_MS,
  statementTimeoutFor,
  transactionWithin,
  within,
} from "./_deadline.ts";
import { messageIdsOf } from "./_emptied.ts";
import { applyPgMigrations } from "./schema.ts";
import { holdForAtrnPg } from "./_hold.ts";

/** QueueAdmin on the PostgreSQL database of `queue.postgres`. */
export class PgQueueAdmin implements QueueAdmin {
  readonly #sql: Sql;
  readonly #ownsPool: boolean;
  readonly #deadlineMs: number;
  #isClosed = false;

  /**
   * Wraps an open pool whose migrations ran; the caller keeps it unless `ownsPool`. A call
   * waits at most `deadlineMs` (default PG_CALL_DEADLINE_MS) for PostgreSQL.
   */
  constructor(sql: Sql, opts: { ownsPool?: boolean; deadlineMs?: number } = {}) {
    this.#sql = sql;
    this.#ownsPool = opts.ownsPool ?? false;
    this.#deadlineMs = opts.deadlineMs ?? PG_CALL_DEADLINE_MS;
  }

  /** Connects (two connections at most), migrates, and opens; `close()` ends the pool. */
  static async open(conn: PgConnectOptions): Promise<PgQueueAdmin> {
    const ms = PG_CALL_DEADLINE_MS;
    const sql = await connectPostgres({
      max: 2,
      statementTimeoutMs: statementTimeoutFor(ms),
      ...conn,
    });
    try {
      await applyPgMigrations(sql);
      return new PgQueueAdmin(sql, { ownsPool: true, deadlineMs: ms });
    } catch (err) {
      await sql.end({ timeout: 1 }).catch(() => {});
      throw err;
    }
  }

  async requeue(selection: RequeueSelection): Promise<RequeueResult> {
    const ids = selection.kind === "messages" ? [...new Set(selection.ids)] : [];
    // Nothing to undo when its COMMIT answers late: running it again changes nothing.
    return await transactionWithin(this.#sql, this.#deadlineMs, "requeue", async (tx) => {
      const where = selectionOf(tx, selection, ids);
      let missingIds: string[] = [];
      if (selection.kind === "messages") {
        const found = await tx`SELECT id FROM messages WHERE id = ANY(${ids}::text[])`;
        const present = new Set(found.map((r) => String(r.id)));
        missingIds = ids.filter((id) => !present.has(id));
      }
      const [expired] = await tx`SELECT count(*)::float8 AS n FROM recipients r
        WHERE ${where} AND r.expired_at IS NOT NULL`;
      const rows = await tx`UPDATE recipients r SET status = 'queued'
        WHERE ${where} AND r.status = 'failed' AND r.expired_at IS NULL
        RETURNING r.id, r.message_id`;
      // A report still owed for the failure given another chance goes with it: kept, it came
      // on top of what the retry decides (a second report once the recipient expired).
      await tx`DELETE FROM report_pending WHERE recipient_id = ANY(${
        rows.map((r) => String(r.id))
      }::bigint[])`;
      return {
        recipients: rows.length,
        messages: messageIdsOf(rows).length,
        expiredSkipped: Number(expired?.n ?? 0),
        missingIds,
      };
    }, () => {});
  }

  async ages(nowMs: number): Promise<DomainAges[]> {
    // Bounds fall with i (now - 5m, now - 15m, …): a recipient's column is the number of
    // bounds its message arrived before; past all of them it is the last column (7d+).
    const bounds = AGE_BUCKETS.flatMap((b) =>
      b.maxAgeSeconds === undefined ? [] : [Math.round(nowMs - b.maxAgeSeconds * 1000)]
    );
    const rows = await within(
      this.#sql`SELECT r.domain,
        (SELECT count(*) FROM unnest(${bounds}::bigint[]) b WHERE b > m.received_at)::int
          AS bucket,
        count(*)::float8 AS n
      FROM recipients r JOIN messages m ON m.id = r.message_id
      WHERE r.status = 'queued' AND r.expired_at IS NULL AND r.route = 'atrn'
      GROUP BY 1, 2 ORDER BY 1`,
      this.#deadlineMs,
      "queue ages",
    );
    const byDomain = new Map<string, number[]>();
    for (const row of rows) {
      const domain = String(row.domain);
      let counts = byDomain.get(domain);
      if (counts === undefined) {
        counts = AGE_BUCKETS.map(() => 0);
        byDomain.set(domain, counts);
      }
      const bucket = Number(row.bucket);
      counts[bucket] = (counts[bucket] ?? 0) + Number(row.n);
    }
    return [...byDomain].map(([domain, counts]) => ({
      domain,
      recipients: counts.reduce((a, b) => a + b, 0),
      counts,
    }));
  }

  async waiting(domains: readonly string[]): Promise<WaitingTotals> {
    // Driven by the (domain, status, message_id) index: costs what the user's own mail costs.
    const [row] = await within(
      this.#sql`SELECT count(*)::float8 AS messages,
        coalesce(sum(size), 0)::float8 AS bytes, min(received_at)::float8 AS oldest
      FROM messages WHERE id IN (SELECT r.message_id FROM recipients r
        WHERE r.domain = ANY(${[...domains]}::text[]) AND r.status = 'queued'
          AND r.expired_at IS NULL AND r.route = 'atrn')`,
      this.#deadlineMs,
      "waiting mail",
    );
    const oldest = row?.oldest;
    return {
      messages: Number(row?.messages ?? 0),
      bytes: Number(row?.bytes ?? 0),
      oldestReceivedAt: oldest === null || oldest === undefined ? undefined : Number(oldest),
    };
  }

  async lastCollections(): Promise<Map<string, number>> {
    const rows = await within(
      this.#sql`SELECT "user", last_atrn_success::float8 AS at FROM user_state`,
      this.#deadlineMs,
      "last collections",
    );
    return new Map(rows.map((r) => [String(r.user), Number(r.at)]));
  }

  holdForAtrn(domains: readonly string[]): Promise<number> {
    return holdForAtrnPg(this.#sql, domains, this.#deadlineMs);
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    if (this.#ownsPool) await this.#sql.end({ timeout: 5 });
  }
}

/** The recipients a requeue looks at, as a condition on `recipients r`. */
function selectionOf(tx: Tx, selection: RequeueSelection, ids: readonly string[]) {
  switch (selection.kind) {
    case "messages":
      return tx`r.message_id = ANY(${[...ids]}::text[])`;
    case "domain":
      return tx`r.domain = ${selection.domain}`;
    case "all":
      return tx`true`;
  }
}
