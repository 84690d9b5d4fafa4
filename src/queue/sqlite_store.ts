/**
 * The SQLite `QueueStore` (node:sqlite): messages, body chunks, recipients and domain leases
 * in `odmr.db`. Writes share one group-committed transaction; claims, renewals and deletes are
 * each one transaction of their own. SQL stays in this folder.
 */
import { errorText } from "../errors.ts";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { type Logger, NULL_LOGGER } from "../observe/log.ts";
import type { SqliteQueueStoreOptions } from "./_store_options.ts";
import { mayBeFull, type SpaceReserve, SpaceShortError } from "./space_reserve.ts";
import { applyMigrations, checkSchemaToRead, dirOf } from "./db.ts";
import { emptiedRemover } from "./_emptied.ts";
import { QueueMaintenance } from "./_maintenance.ts";
import { GroupTransaction } from "./_group_tx.ts";
import { newQueueId } from "./id.ts";
import { SqliteAtrn } from "./_atrn.ts";
import { QueueReader } from "./_reader.ts";
import { type LeasedDomains, toQueuedMessage } from "./_rows.ts";
import { SqliteOutbound } from "./_outbound.ts";
import { holdForAtrn } from "./_hold.ts";
import { SqliteStats } from "./_stats.ts";
import { QUEUE_MIGRATIONS } from "./_schema.ts";

import { settled } from "./_settled.ts";
import { prepareWriterStatements, SqliteMessageWriter, type WriterStatements } from "./_writer.ts";
import { ChunkPool } from "./_chunk_buffer.ts";
import { BodyFiles } from "./_body_files.ts";
import { RefusedRows } from "./_refused.ts";
import { reportsDone } from "./_report_pending.ts";
import { UnsyncedMessages } from "./_unsynced.ts";
import { deferWalSync } from "./_wal_sync.ts";
import { type StoreCheckpoint, storeCheckpoint } from "./_idle_checkpoint.ts";
import { convertForIncrementalVacuum, removeLeftovers } from "./_store_start.ts";
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

export type { SqliteQueueStoreOptions };

/** Size of one `message_chunks` row. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024;

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
  readonly #atrn: SqliteAtrn;
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
  readonly #reserve: SpaceReserve | undefined;
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
    this.#reserve = opts.reserve;
    // Only the receiving process (serve) converts an old file: VACUUM needs a quiet moment.
    if (opts.removeOrphans ?? true) convertForIncrementalVacuum(db, this.#log);
    (opts.readOnly === true ? checkSchemaToRead : applyMigrations)(db, "queue", QUEUE_MIGRATIONS);
    if (opts.tempInMemory === true) db.exec("PRAGMA temp_store = MEMORY");
    this.#files = opts.bodyFiles === false
      ? undefined
      : BodyFiles.open(db, this.#log, { readBytes: this.#chunkBytes, ...opts.bodyFiles });
    this.#writesFiles = opts.removeOrphans ?? true;
    // Another process than serve that writes: notes the bodies its deletions free
    // (_body_elsewhere.ts).
    if (!this.#writesFiles && opts.readOnly !== true) this.#files?.noteDeletionsHere();
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
    this.#deleteMessage = this.#writerSql.deleteMessage;
    this.#deleteChunks = this.#writerSql.deleteChunks;
    this.#deleteDomainRecipients = db.prepare(
      "DELETE FROM recipients WHERE domain = ? RETURNING message_id",
    );
    this.#removeIfEmpty = emptiedRemover(db);
    this.#stats = new SqliteStats(db);
    this.#ping = db.prepare("SELECT 1 AS one");
    const leaseDeps = {
      db,
      group: this.#group,
      reader: this.#reader,
      now: this.#now,
      unsynced: this.#unsynced,
      reserve: this.#reserve,
    };
    this.#atrn = new SqliteAtrn(leaseDeps);
    this.#outbound = new SqliteOutbound(leaseDeps);
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
    if (opts.removeOrphans ?? true) {
      removeLeftovers({
        db,
        log: this.#log,
        exclusive: (what, fn) => this.#exclusive(what, fn),
        files: this.#files,
        refused: this.#refused,
      });
    }
  }

  newId(): Promise<string> {
    return Promise.resolve(this.#newId());
  }

  begin(message: NewMessage): Promise<MessageWriter> {
    return settled(() => {
      this.#assertOpen();
      // The room left is the drains' (space_reserve.ts): a 452 4.3.1 before anything is written.
      if (this.#reserve?.allowsMail() === false) throw new SpaceShortError();
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
    return settled(() => {
      this.#assertOpen();
      const wanted = [...new Set(domains)];
      const now = this.#now();
      return this.#exclusive("ATRN claim", () => this.#atrn.claim(wanted, opts, now));
    });
  }

  claimOutbound(opts: OutboundClaimOptions): Promise<Lease | undefined> {
    return settled(() => {
      this.#assertOpen();
      const claim = () => this.#outbound.claim(opts);
      return this.#reserve === undefined ? claim() : this.#reserve.retry("outbound claim", claim);
    });
  }

  holdForAtrn(domains: readonly string[]): Promise<number> {
    return settled(() => {
      this.#assertOpen();
      return this.#exclusive("hold for ATRN", () => holdForAtrn(this.#db, domains));
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
      return this.#exclusive("queue delete", () => {
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

  /**
   * One `serve` per data directory: every lease in the file is a previous process's. With no
   * room even for that (a full disk and no reserve), their rows stay and claims take them as
   * free, as after any failed release (UnreleasedLeases).
   */
  releaseAllLeases(): Promise<number> {
    return settled(() => {
      this.#assertOpen();
      try {
        return this.#exclusive(
          "stale lease release",
          () => this.#atrn.releaseAll(this.#db) + this.#outbound.releaseAll(this.#db),
        );
      } catch (err) {
        if (!mayBeFull(err, dirOf(this.#db))) throw err;
        const count = this.#atrn.forgetAll(this.#db) + this.#outbound.forgetAll(this.#db);
        this.#log.warn("stale_leases_kept", { count, error: errorText(err) });
        return count;
      }
    });
  }

  deleteDomain(domain: string): Promise<number> {
    return settled(() => this.#deleteDomain(domain));
  }

  #deleteDomain(domain: string): number {
    this.#assertOpen();
    return this.#exclusive("queue delete", () => {
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
        this.#files?.sweep(
          () => this.#group.syncAllNow(),
          (what, fn) => this.#exclusive(what, fn),
        );
        this.#reserve?.restore();
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

  /** `fn` in a transaction of its own; once more after giving the reserve back if no room. */
  #exclusive<T>(what: string, fn: () => T): T {
    const run = () => this.#group.exclusive(fn);
    return this.#reserve === undefined ? run() : this.#reserve.retry(what, run);
  }

  #newId(): string {
    return newQueueId(this.#now());
  }

  #leasedDomains(): LeasedDomains {
    const now = this.#now();
    return { atrn: this.#atrn.leased(now), mx: this.#outbound.leased(now), now };
  }

  #assertOpen(): void {
    if (this.#isClosed) throw new Error("SqliteQueueStore used after close()");
  }
}
