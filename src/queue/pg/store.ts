/**
 * The PostgreSQL `QueueStore`: the same tables and rules as the SQLite one, shared by several
 * `serve` nodes. Message rows and settlements are group-committed (synchronous commit);
 * claims take domain leases under row locks, so one domain is drained by at most one session
 * cluster-wide; maintenance runs on one node at a time (advisory lock). SQL stays here.
 * The main pool's sessions carry a `statement_timeout` just below the calls' deadline
 * (_deadline.ts): claims, drain reads, lease renewals and releases, the group commit, the
 * users' tables. What may rightly take long (migrations, which wait for another node's too;
 * maintenance; the admin commands' deletes and `queue migrate`'s imports) has a small pool
 * with no statement timeout; its deletes and imports have a long deadline of their own.
 */
import { type Logger, NULL_LOGGER } from "../../observe/log.ts";
import { newQueueId } from "../id.ts";
import { type LeasedDomains, toQueuedMessage } from "../_rows.ts";
import type {
  ClaimResult,
  DomainStats,
  DomainUsage,
  Lease,
  ListFilter,
  MaintenanceOptions,
  MaintenanceReport,
  MessageWriter,
  NewMessage,
  OutboundClaimOptions,
  QueuedMessage,
  QueueStore,
  ReportedRecipients,
} from "../types.ts";
import { claimOutboundPg, DoubtfulClaims, nextOutboundAtPg } from "./_outbound.ts";
import { DATABASE_CLOCK, givenClock, type LeaseClock } from "./_clock.ts";
import { connectPostgres, type PgConnectOptions, poolName, type Sql, type Tx } from "./connect.ts";
import { reportDone } from "./_report_pending.ts";
import { deleteDomainPg, deleteMessagesPg } from "./_admin_delete.ts";
import { PgGauges } from "./_gauges.ts";
import { holdForAtrnPg } from "./_hold.ts";
import { PgGroupCommit } from "./_group.ts";
import { PendingReleases } from "./_release_later.ts";
import { importMessagePg, type ImportSource } from "./_import.ts";
import {
  PG_CALL_DEADLINE_MS,
  PG_LONG_DEADLINE_MS,
  statementTimeoutFor,
  within,
} from "./_deadline.ts";
import { liveLeasesPg, type PgLeaseDeps } from "./_lease.ts";
import { claimAtrnPg } from "./_atrn.ts";
import { PgMaintenance } from "./_maintenance.ts";
import { PgReader } from "./_reader.ts";
import { applyPgMigrations } from "./schema.ts";
import { PgMessageWriter } from "./_writer.ts";

/** Connections of the pool with no statement timeout (opened when used, closed when idle). */
const LONG_POOL_MAX = 2;
/** Connections of the pool that inserts a body's full chunks. */
const CHUNK_POOL_MAX = 4;

/** Size of one `message_chunks` row. */
export const PG_CHUNK_BYTES = 64 * 1024;
/** How long /healthz waits for `SELECT 1`. */
const PING_TIMEOUT_MS = 3000;

/** Options of `PgQueueStore`. */
export interface PgQueueStoreOptions {
  /**
   * This node's name (its `hostname`): leases are owned by `NODE|session`, and at start a node
   * drops only the leases its own previous process left. Every node needs its own.
   */
  readonly nodeId: string;
  readonly now?: () => number;
  /**
   * Tests only: lease times from this clock (ms) instead of the database's (_clock.ts), so that
   * the QueueStore contract can step a lease to its expiry by the millisecond.
   */
  readonly leaseClock?: () => number;
  readonly chunkBytes?: number;
  readonly logger?: Logger;
  /** Called after each group COMMIT (tests count them). */
  readonly onGroupCommit?: () => void;
  /** How long a message or settlement may wait for its COMMIT (default GROUP_DEADLINE_MS). */
  readonly commitDeadlineMs?: number;
  /**
   * How long an ATRN claim, one read, a lease's renewal or release may wait for an answer
   * (default PG_CALL_DEADLINE_MS).
   */
  readonly callDeadlineMs?: number;
  /** How long a maintenance call, a delete or an import may wait (PG_LONG_DEADLINE_MS). */
  readonly longDeadlineMs?: number;
}

/** The queue on PostgreSQL. */
export class PgQueueStore implements QueueStore {
  readonly #sql: Sql;
  readonly #chunkSql: Sql;
  /** No statement timeout: migrations, maintenance, admin deletes and imports. */
  readonly #longSql: Sql;
  readonly #nodeId: string;
  readonly #now: () => number;
  /** Lease times (_clock.ts). */
  readonly #clock: LeaseClock;
  readonly #chunkBytes: number;
  readonly #log: Logger;
  readonly #group: PgGroupCommit;
  readonly #reader: PgReader;
  /** Outbound claims whose upsert may have committed unseen (_outbound.ts). */
  readonly #doubtful = new DoubtfulClaims();
  /** Leases whose release failed, released again once the database answers. */
  readonly #pendingReleases: PendingReleases;
  readonly #maintenance: PgMaintenance;
  readonly #gauges: PgGauges;
  readonly #deadlineMs: number;
  readonly #longDeadlineMs: number;
  #isClosed = false;

  /**
   * Connects (three pools: group writes, reads and leases; body chunks; what may take long, each
   * with the statement timeout of its deadline), migrates, and opens. In pg_stat_activity the first pool has
   * the `applicationName` given (its LISTEN too), the others "… chunks" and "… long".
   */
  static async open(conn: PgConnectOptions, opts: PgQueueStoreOptions): Promise<PgQueueStore> {
    // Each pool's first query has connectPostgres's own deadline (connect timeout + 10 s), not
    // the calls': a short call deadline would have to cover a handshake on a loaded machine.
    const name = conn.applicationName ?? "odmr-relay";
    // The long calls' statement timeout too: at their deadline the client drops the connection,
    // and PostgreSQL, which notices a client gone only when it next writes to it, went on
    // running the statement (and holding its locks) for as long as it took.
    const longSql = await connectPostgres({
      ...conn,
      max: LONG_POOL_MAX,
      applicationName: poolName(name, "long"),
      statementTimeoutMs: statementTimeoutFor(opts.longDeadlineMs ?? PG_LONG_DEADLINE_MS),
    });
    let sql: Sql | undefined;
    let chunkSql: Sql | undefined;
    try {
      await applyPgMigrations(longSql);
      sql = await connectPostgres({
        ...conn,
        statementTimeoutMs: statementTimeoutFor(opts.callDeadlineMs ?? PG_CALL_DEADLINE_MS),
      });
      // The same statement timeout: its inserts have the calls' deadline (_writer.ts).
      chunkSql = await connectPostgres({
        ...conn,
        max: CHUNK_POOL_MAX,
        applicationName: poolName(name, "chunks"),
        synchronousCommit: "off",
        statementTimeoutMs: statementTimeoutFor(opts.callDeadlineMs ?? PG_CALL_DEADLINE_MS),
      });
      return new PgQueueStore({ sql, chunkSql, longSql }, opts);
    } catch (err) {
      await longSql.end({ timeout: 1 }).catch(() => {});
      await sql?.end({ timeout: 1 }).catch(() => {});
      await chunkSql?.end({ timeout: 1 }).catch(() => {});
      throw err;
    }
  }

  /** `pools.sql` carries the statement timeout of the calls' deadline (`open` sets it). */
  constructor(pools: { sql: Sql; chunkSql: Sql; longSql: Sql }, opts: PgQueueStoreOptions) {
    const { sql } = pools;
    this.#sql = sql;
    this.#chunkSql = pools.chunkSql;
    this.#longSql = pools.longSql;
    this.#nodeId = opts.nodeId;
    this.#now = opts.now ?? Date.now;
    this.#clock = opts.leaseClock === undefined ? DATABASE_CLOCK : givenClock(opts.leaseClock);
    this.#chunkBytes = opts.chunkBytes ?? PG_CHUNK_BYTES;
    this.#log = opts.logger ?? NULL_LOGGER;
    this.#pendingReleases = new PendingReleases(this.#log);
    this.#deadlineMs = opts.callDeadlineMs ?? PG_CALL_DEADLINE_MS;
    this.#longDeadlineMs = opts.longDeadlineMs ?? PG_LONG_DEADLINE_MS;
    this.#group = new PgGroupCommit(
      sql,
      opts.onGroupCommit,
      opts.commitDeadlineMs,
      statementTimeoutFor(this.#deadlineMs),
    );
    this.#reader = new PgReader(sql, this.#log, this.#deadlineMs);
    this.#gauges = new PgGauges(sql, this.#now, this.#deadlineMs);
    this.#maintenance = new PgMaintenance({
      sql: pools.longSql,
      reader: this.#reader,
      log: this.#log,
      now: this.#now,
      newId: () => newQueueId(this.#now()),
      chunkBytes: this.#chunkBytes,
      leasedDomains: () => this.#leasedDomains(),
      leaseClock: this.#clock,
      deadlineMs: this.#longDeadlineMs,
    });
  }

  /**
   * The pool, for the users and per-user state kept in the same database. Its sessions carry
   * the statement timeout of `callDeadlineMs`: a call on it waits at most that long
   * (`within`, `transactionWithin` of _deadline.ts).
   */
  get pool(): Sql {
    return this.#sql;
  }

  /** How long a call on `pool` may wait for an answer. */
  get callDeadlineMs(): number {
    return this.#deadlineMs;
  }

  newId(): Promise<string> {
    return Promise.resolve(newQueueId(this.#now()));
  }

  begin(message: NewMessage): Promise<MessageWriter> {
    this.#assertOpen();
    return Promise.resolve(
      new PgMessageWriter(message.id ?? newQueueId(this.#now()), message, {
        chunkSql: this.#chunkSql,
        group: this.#group,
        log: this.#log,
        chunkBytes: this.#chunkBytes,
        receivedAt: this.#now(),
        deadlineMs: this.#deadlineMs,
      }),
    );
  }

  async claim(
    domains: readonly string[],
    opts: { owner: string; leaseSeconds: number },
  ): Promise<ClaimResult> {
    this.#assertOpen();
    const owner = `${this.#nodeId}|${opts.owner}`;
    return await claimAtrnPg(this.#leaseDeps(), domains, owner, opts.leaseSeconds, this.#log);
  }

  claimOutbound(opts: OutboundClaimOptions): Promise<Lease | undefined> {
    this.#assertOpen();
    const owner = `${this.#nodeId}|${opts.owner}`;
    return claimOutboundPg(this.#leaseDeps(), owner, opts, this.#doubtful, this.#log);
  }

  nextOutboundAt(): Promise<number | undefined> {
    this.#assertOpen();
    return nextOutboundAtPg(this.#leaseDeps());
  }

  async list(filter: ListFilter = {}): Promise<QueuedMessage[]> {
    this.#assertOpen();
    const leased = await this.#leasedDomains();
    const found = filter.domain === undefined
      ? this.#reader.all()
      : this.#reader.inDomains([filter.domain], false);
    const out: QueuedMessage[] = [];
    for await (const { message, recipients } of found) {
      out.push(toQueuedMessage(message, recipients, leased));
    }
    return out;
  }

  async get(id: string): Promise<QueuedMessage | undefined> {
    this.#assertOpen();
    const found = await this.#reader.one(id);
    if (found === undefined) return undefined;
    return toQueuedMessage(found.message, found.recipients, await this.#leasedDomains());
  }

  readBody(messageId: string): AsyncIterable<Uint8Array> {
    this.#assertOpen();
    return this.#reader.body(messageId);
  }

  delete(ids: readonly string[]): Promise<number> {
    this.#assertOpen();
    return deleteMessagesPg(this.#longSql, ids, this.#longDeadlineMs);
  }

  reportDecided(reported: ReportedRecipients): Promise<void> {
    this.#assertOpen();
    if (reported.recipientIds.length === 0) return Promise.resolve();
    return this.#group.run((tx: Tx) => reportDone(tx, reported), "normal");
  }

  deleteDomain(domain: string): Promise<number> {
    this.#assertOpen();
    return deleteDomainPg(this.#longSql, domain, this.#longDeadlineMs);
  }

  holdForAtrn(domains: readonly string[]): Promise<number> {
    this.#assertOpen();
    return holdForAtrnPg(this.#sql, domains, this.#deadlineMs);
  }

  /**
   * Drops this node's leases only: the other nodes' sessions are alive. Within the call
   * deadline: serve runs it at start, which waited forever on a silent connection.
   */
  async releaseAllLeases(): Promise<number> {
    this.#assertOpen();
    const mine = this.#nodeId + "|";
    const rows = await within(
      this.#sql`DELETE FROM domain_leases WHERE starts_with(owner, ${mine}) RETURNING domain`,
      this.#deadlineMs,
      "release of this node's leases",
    );
    const outbound = await within(
      this.#sql`DELETE FROM outbound_leases WHERE starts_with(owner, ${mine}) RETURNING domain`,
      this.#deadlineMs,
      "release of this node's outbound leases",
    );
    return rows.length + outbound.length;
  }

  async usage(domain: string): Promise<DomainUsage> {
    this.#assertOpen();
    // Read from the (domain, status, message_id) index: the domain's own rows only. Within
    // the call deadline: a sender's RCPT or DATA for a domain with a quota waits on it.
    const [row] = await within(
      this.#sql`SELECT count(*)::float8 AS messages, coalesce(sum(size), 0)::float8 AS bytes
        FROM messages WHERE id IN (SELECT message_id FROM recipients
          WHERE domain = ${domain} AND route = 'atrn')`,
      this.#deadlineMs,
      "quota usage",
    );
    return { messages: Number(row?.messages ?? 0), bytes: Number(row?.bytes ?? 0) };
  }

  domainStats(): Promise<DomainStats[]> {
    this.#assertOpen();
    return this.#gauges.stats();
  }

  maintain(opts: MaintenanceOptions): Promise<MaintenanceReport> {
    this.#assertOpen();
    return this.#maintenance.run(opts);
  }

  /**
   * `SELECT 1` within PING_TIMEOUT_MS (/healthz answers 503 past it). Its connection, if silent,
   * is dropped like a late call's, but only past the pool's longest statement: a healthy
   * connection may be running one ahead of the check.
   */
  async ping(): Promise<void> {
    this.#assertOpen();
    await within(this.#sql`SELECT 1 AS one`, PING_TIMEOUT_MS, "health check", this.#deadlineMs);
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#pendingReleases.close();
    await this.#group.drain();
    await Promise.all(
      [this.#sql, this.#chunkSql, this.#longSql].map((pool) => pool.end({ timeout: 5 })),
    );
  }

  /**
   * Copies one message as another store holds it, in one transaction (_import.ts). False when
   * its id was copied before (even if delivered since) or is queued here, so a copy that was
   * cut off can simply be run again (`queue migrate`).
   */
  async importMessage(message: QueuedMessage, source: ImportSource): Promise<boolean> {
    this.#assertOpen();
    return await importMessagePg(this.#longSql, this.#now(), message, source, this.#longDeadlineMs);
  }

  /** Live leases on the database's clock (_clock.ts); `now` (retry times) is this node's. */
  async #leasedDomains(): Promise<LeasedDomains> {
    const now = this.#now();
    const atrn = await liveLeasesPg(this.#leaseDeps(), "domain_leases");
    const mx = await liveLeasesPg(this.#leaseDeps(), "outbound_leases");
    return { atrn, mx, now };
  }

  #leaseDeps(): PgLeaseDeps {
    return {
      sql: this.#sql,
      group: this.#group,
      reader: this.#reader,
      clock: this.#clock,
      deadlineMs: this.#deadlineMs,
      pendingReleases: this.#pendingReleases,
    };
  }

  #assertOpen(): void {
    if (this.#isClosed) throw new Error("PgQueueStore used after close()");
  }
}
