/**
 * The SQLite `QueueStore` (node:sqlite): messages, body chunks, recipients and domain leases
 * in `odmr.db`. Writes share one group-committed transaction; claims, renewals and deletes are
 * each one transaction of their own. SQL stays in this folder.
 */
import { errorText } from "../errors.ts";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { type Logger, NULL_LOGGER } from "../observe/log.ts";
import { applyMigrations, ensureIncrementalVacuum } from "./db.ts";
import { emptiedRemover } from "./_emptied.ts";
import { QueueMaintenance } from "./_maintenance.ts";
import { type CommitLevel, GroupTransaction } from "./_group_tx.ts";
import { newQueueId } from "./id.ts";
import { keepsOut, liveLeases, SqliteLease, UnreleasedLeases } from "./_lease.ts";
import { QueueReader } from "./_reader.ts";
import { type LeasedDomains, toQueuedMessage } from "./_rows.ts";
import { SqliteOutbound } from "./_outbound.ts";
import { SqliteStats } from "./_stats.ts";
import { QUEUE_MIGRATIONS } from "./_schema.ts";

import { settled } from "./_settled.ts";
import { prepareWriterStatements, SqliteMessageWriter, type WriterStatements } from "./_writer.ts";
import { ChunkPool } from "./_chunk_buffer.ts";
import { BodyFiles, type BodyFilesOptions } from "./_body_files.ts";
import { RefusedRows } from "./_refused.ts";
import { reportsDone } from "./_report_pending.ts";
import { UnsyncedMessages } from "./_unsynced.ts";
import { deferWalSync, type WalSync } from "./_wal_sync.ts";
import { type StoreCheckpoint, storeCheckpoint } from "./_idle_checkpoint.ts";
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
} from "./types.ts";

/** Size of one `message_chunks` row. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024;

/** Options of `SqliteQueueStore`. */
export interface SqliteQueueStoreOptions {
  /** Clock in milliseconds since the epoch (tests inject one). */
  readonly now?: () => number;
  /** Bytes per stored body chunk. */
  readonly chunkBytes?: number;
  readonly logger?: Logger;
  /**
   * Delete chunk rows that have no message (left by a crash) when opening. Default true.
   * Only the process that receives mail (`serve`) may do it: in another process (`queue …`
   * beside a running `serve`) those rows may belong to a message still being received.
   */
  readonly removeOrphans?: boolean;
  /** Called right after each group COMMIT with its level (tests count them). */
  readonly onGroupCommit?: (level: CommitLevel) => void;
  /**
   * Makes group commits durable off the event loop (tests inject one). Default: the WAL file's
   * `deferWalSync`, or none for an in-memory database (its COMMIT decides).
   */
  readonly walSync?: WalSync;
  /**
   * True when a WAL sync may run on the event loop: nothing else would wait for it (serve:
   * at most one session open), and the lone sender is spared the hand-off to a thread.
   * Default: never (always off the loop).
   */
  readonly syncInline?: () => boolean;
  /**
   * `temp_store = MEMORY` after the migrations: the savepoint journal a drain's settle batch
   * spilled to /var/tmp every batch (#13) stays in memory. Only for bounded writes (serve's);
   * a `queue delete` of a whole domain would journal all of it. Default false.
   */
  readonly tempInMemory?: boolean;
  /** Quiet time before the store checkpoints the WAL (IDLE_CHECKPOINT_MS; tests shorten it). */
  readonly idleCheckpointMs?: number;
  /** False while that checkpoint must wait (serve: some session is open). Default: always true. */
  readonly isIdle?: () => boolean;
  /** false: bodies stay in SQLite; default: those of a chunk or more in files (_body_files.ts). */
  readonly bodyFiles?: false | BodyFilesOptions;
}

/** The queue on node:sqlite. */
export class SqliteQueueStore implements QueueStore {
  readonly #db: DatabaseSync;
  readonly #now: () => number;
  readonly #chunkBytes: number;
  readonly #chunkPool: ChunkPool;
  readonly #log: Logger;
  readonly #group: GroupTransaction;
  readonly #reader: QueueReader;
  readonly #writerSql: WriterStatements;
  readonly #leaseOf: StatementSync;
  readonly #takeLease: StatementSync;
  readonly #anyQueued: StatementSync;
  readonly #liveLeases: (now: number) => Set<string>;
  readonly #deleteMessage: StatementSync;
  readonly #deleteChunks: StatementSync;
  readonly #deleteDomainRecipients: StatementSync;
  readonly #removeIfEmpty: (id: string) => boolean;
  readonly #stats: SqliteStats;
  readonly #ping: StatementSync;
  readonly #maintenance: QueueMaintenance;
  readonly #outbound: SqliteOutbound;
  readonly #checkpoint: StoreCheckpoint;
  readonly #files: BodyFiles | undefined;
  readonly #writesFiles: boolean;
  readonly #refused: RefusedRows;
  readonly #unsynced = new UnsyncedMessages();
  readonly #unreleased = new UnreleasedLeases();
  #isClosed = false;

  constructor(db: DatabaseSync, opts: SqliteQueueStoreOptions = {}) {
    this.#db = db;
    this.#now = opts.now ?? Date.now;
    this.#chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(this.#chunkBytes) || this.#chunkBytes < 1) {
      throw new RangeError(
        `chunkBytes must be a positive integer: current value is ${this.#chunkBytes}`,
      );
    }
    this.#chunkPool = new ChunkPool(this.#chunkBytes);
    this.#log = opts.logger ?? NULL_LOGGER;
    // Only the receiving process (serve) converts an old file: VACUUM needs a quiet moment.
    if (opts.removeOrphans ?? true) this.#convertForIncrementalVacuum();
    applyMigrations(db, "queue", QUEUE_MIGRATIONS);
    if (opts.tempInMemory === true) db.exec("PRAGMA temp_store = MEMORY");
    this.#files = opts.bodyFiles === false
      ? undefined
      : BodyFiles.open(db, this.#log, { readBytes: this.#chunkBytes, ...opts.bodyFiles });
    this.#writesFiles = opts.removeOrphans ?? true;
    const onGroupCommit = opts.onGroupCommit;
    this.#checkpoint = storeCheckpoint(db, {
      log: this.#log,
      group: () => this.#group,
      isClosed: () => this.#isClosed,
      isIdle: opts.isIdle,
      idleMs: opts.idleCheckpointMs,
    });
    this.#group = new GroupTransaction(db, {
      onCommit: (level) => {
        onGroupCommit?.(level);
        this.#checkpoint.noteCommit();
      },
      sync: opts.walSync ?? deferWalSync(db),
      ...(opts.syncInline === undefined ? {} : { syncInline: opts.syncInline }),
      onBroken: (err) =>
        this.#log.error("queue_sync_failed", {
          error: err.message,
          action: "restart serve: until then every message is refused with 451 4.3.0, " +
            "and /healthz answers 503",
        }),
    });
    this.#writerSql = prepareWriterStatements(db);
    const deps = { db, group: this.#group, sql: this.#writerSql, log: this.#log };
    this.#refused = new RefusedRows(deps, this.#writesFiles);
    this.#reader = new QueueReader(db, this.#log, this.#files, this.#refused);
    this.#leaseOf = db.prepare("SELECT owner, lease_until FROM domain_leases WHERE domain = ?");
    this.#takeLease = db.prepare(
      "INSERT INTO domain_leases (domain, owner, lease_until) VALUES (?, ?, ?) " +
        "ON CONFLICT(domain) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until",
    );
    this.#anyQueued = db.prepare(
      "SELECT 1 AS found FROM recipients WHERE status = 'queued' " +
        "AND domain IN (SELECT value FROM json_each(?)) AND route = 'atrn' LIMIT 1",
    );
    this.#liveLeases = liveLeases(db, "domain_leases");
    this.#deleteMessage = this.#writerSql.deleteMessage;
    this.#deleteChunks = this.#writerSql.deleteChunks;
    this.#deleteDomainRecipients = db.prepare(
      "DELETE FROM recipients WHERE domain = ? RETURNING message_id",
    );
    this.#removeIfEmpty = emptiedRemover(db);
    this.#stats = new SqliteStats(db);
    this.#ping = db.prepare("SELECT 1 AS one");
    this.#outbound = new SqliteOutbound({
      db,
      group: this.#group,
      reader: this.#reader,
      now: this.#now,
      unsynced: this.#unsynced,
    });
    this.#maintenance = new QueueMaintenance({
      db,
      group: this.#group,
      reader: this.#reader,
      writerSql: this.#writerSql,
      log: this.#log,
      now: this.#now,
      newId: () => this.#newId(),
      chunkBytes: this.#chunkBytes,
      leasedDomains: () => this.#leasedDomains(),
      checkpoint: () => this.#checkpoint.soon(),
    });
    if (opts.removeOrphans ?? true) this.removeOrphanChunks();
  }

  newId(): Promise<string> {
    return Promise.resolve(this.#newId());
  }

  begin(message: NewMessage): Promise<MessageWriter> {
    return settled(() => {
      this.#assertOpen();
      return new SqliteMessageWriter(message.id ?? this.#newId(), message, {
        group: this.#group,
        sql: this.#writerSql,
        log: this.#log,
        chunkBytes: this.#chunkBytes,
        receivedAt: this.#now(),
        pool: this.#chunkPool,
        // Only the receiving process writes body files (see _body_files.ts).
        files: this.#writesFiles ? this.#files : undefined,
        refused: (id) => this.#refused.add(id),
        unsynced: this.#unsynced,
      });
    });
  }

  claim(
    domains: readonly string[],
    opts: { owner: string; leaseSeconds: number },
  ): Promise<ClaimResult> {
    return settled(() => this.#claim(domains, opts));
  }

  #claim(domains: readonly string[], opts: { owner: string; leaseSeconds: number }): ClaimResult {
    this.#assertOpen();
    const wanted = [...new Set(domains)];
    const now = this.#now();
    return this.#group.exclusive((): ClaimResult => {
      // Check everything before writing anything: all domains or none (docs/protocol.md §1.7).
      for (const domain of wanted) {
        if (keepsOut(this.#leaseOf.get(domain), now, opts.owner, this.#unreleased)) {
          return { kind: "busy", domain };
        }
      }
      if (this.#anyQueued.get(JSON.stringify(wanted)) === undefined) return { kind: "empty" };
      const until = now + opts.leaseSeconds * 1000;
      for (const domain of wanted) this.#takeLease.run(domain, opts.owner, until);
      const lease = new SqliteLease(wanted, opts, {
        db: this.#db,
        group: this.#group,
        reader: this.#reader,
        now: this.#now,
        unsynced: this.#unsynced,
        unreleased: this.#unreleased,
      });
      return { kind: "claimed", lease };
    });
  }

  claimOutbound(opts: OutboundClaimOptions): Promise<Lease | undefined> {
    return settled(() => {
      this.#assertOpen();
      return this.#outbound.claim(opts);
    });
  }

  nextOutboundAt(): Promise<number | undefined> {
    return settled(() => {
      this.#assertOpen();
      return this.#outbound.nextAt();
    });
  }

  list(filter: ListFilter = {}): Promise<QueuedMessage[]> {
    return settled(() => this.#list(filter));
  }

  #list(opts: ListFilter): QueuedMessage[] {
    this.#assertOpen();
    const leased = this.#leasedDomains();
    const domains = opts.domain === undefined ? undefined : [opts.domain];
    const out: QueuedMessage[] = [];
    for (const { message, recipients } of this.#reader.messages({ domains, queuedOnly: false })) {
      out.push(toQueuedMessage(message, recipients, leased));
    }
    return out;
  }

  get(id: string): Promise<QueuedMessage | undefined> {
    return settled(() => {
      this.#assertOpen();
      const found = this.#reader.message(id);
      if (found === undefined) return undefined;
      return toQueuedMessage(found.message, found.recipients, this.#leasedDomains());
    });
  }

  async *readBody(messageId: string): AsyncGenerator<Uint8Array> {
    this.#assertOpen();
    yield* this.#reader.body(messageId);
  }

  delete(ids: readonly string[]): Promise<number> {
    return settled(() => {
      this.#assertOpen();
      return this.#group.exclusive(() => {
        let count = 0;
        for (const id of new Set(ids)) {
          // Recipients go with the message (ON DELETE CASCADE); chunks have no foreign key.
          const { changes } = this.#deleteMessage.run(id);
          this.#deleteChunks.run(id);
          if (Number(changes) > 0) count++;
        }
        return count;
      });
    });
  }

  reportDecided(reported: ReportedRecipients): Promise<void> {
    this.#assertOpen();
    return reportsDone(this.#group, this.#writerSql, reported);
  }

  /** One `serve` per data directory: every lease in the file is a previous process's. */
  releaseAllLeases(): Promise<number> {
    return settled(() => {
      this.#assertOpen();
      return this.#group.exclusive(() =>
        Number(this.#db.prepare("DELETE FROM domain_leases").run().changes) +
        this.#outbound.releaseAll(this.#db)
      );
    });
  }

  deleteDomain(domain: string): Promise<number> {
    return settled(() => this.#deleteDomain(domain));
  }

  #deleteDomain(domain: string): number {
    this.#assertOpen();
    return this.#group.exclusive(() => {
      const touched = new Set<string>();
      for (const row of this.#deleteDomainRecipients.all(domain)) {
        const id: unknown = row.message_id;
        if (typeof id === "string") touched.add(id);
      }
      for (const id of touched) this.#removeIfEmpty(id);
      return touched.size;
    });
  }

  domainStats(): Promise<DomainStats[]> {
    return settled(() => {
      this.#assertOpen();
      return this.#stats.domainStats();
    });
  }

  usage(domain: string): Promise<DomainUsage> {
    return settled(() => {
      this.#assertOpen();
      return this.#stats.usage(domain);
    });
  }

  /**
   * One maintenance pass (serve runs it every minute): expiry with DSNs, removal after the
   * grace period, incremental vacuum and WAL truncation. Bounded work per call.
   */
  maintain(opts: MaintenanceOptions): Promise<MaintenanceReport> {
    return settled(() => {
      this.#assertOpen();
      this.#refused.retry();
      try {
        return this.#maintenance.run(opts);
      } finally {
        this.#files?.sweep(() => this.#group.syncAllNow());
      }
    });
  }

  ping(): Promise<void> {
    return settled(() => {
      this.#assertOpen();
      // After a failed sync the database answers but stores nothing more: not healthy.
      const broken = this.#group.broken ?? this.#files?.broken;
      if (broken !== undefined) throw broken;
      const row: unknown = this.#ping.get();
      if (typeof row !== "object" || row === null || (row as { one?: unknown }).one !== 1) {
        throw new Error("database did not answer SELECT 1");
      }
    });
  }

  /** Deletes chunk rows without a message (a crash mid-DATA); returns how many. */
  removeOrphanChunks(): number {
    this.#assertOpen();
    const removed = this.#group.exclusive(() =>
      this.#db.prepare(
        "DELETE FROM message_chunks WHERE message_id NOT IN (SELECT id FROM messages)",
      ).run().changes
    );
    if (Number(removed) > 0) this.#log.info("queue_orphans_removed", { chunks: Number(removed) });
    return Number(removed) + (this.#files?.removeOrphans() ?? 0);
  }

  /** Commits pending writes and closes the database. */
  close(): Promise<void> {
    return settled(() => this.closeNow());
  }

  /** `close()` for callers that cannot wait (process exit paths, tests' finally blocks). */
  closeNow(): void {
    if (this.#isClosed) return;
    this.#refused.close();
    // After the group's last COMMIT, which would start the checkpoint timer again.
    this.#group.close();
    // After the group's last sync: the files of every deletion so far can go.
    this.#files?.close();
    this.#checkpoint.close();
    this.#isClosed = true;
    this.#db.close();
  }

  #newId(): string {
    return newQueueId(this.#now());
  }

  #convertForIncrementalVacuum(): void {
    try {
      if (ensureIncrementalVacuum(this.#db)) {
        this.#log.info("queue_vacuumed", { reason: "auto_vacuum set to incremental (once)" });
      }
    } catch (err) {
      // Busy (another process reading) or no room: serve works anyway; the next start retries.
      this.#log.warn("queue_vacuum_failed", { reason: errorText(err) });
    }
  }

  #leasedDomains(): LeasedDomains {
    const now = this.#now();
    return { atrn: this.#liveLeases(now), mx: this.#outbound.leased(now), now };
  }

  #assertOpen(): void {
    if (this.#isClosed) throw new Error("SqliteQueueStore used after close()");
  }
}
