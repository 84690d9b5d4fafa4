/**
 * One bounded maintenance pass over the SQLite queue: expire recipients older than their
 * domain's max age (one failure DSN per message, queued only for a local sender domain),
 * remove expired recipients after a grace period, give free pages back and truncate the WAL.
 * Each message's expiry is one transaction; domains under a live lease are left alone.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { errorText } from "../errors.ts";
import type { Logger } from "../observe/log.ts";
import { concatBytes } from "../wire/bytes.ts";
import { emptiedRemover } from "./_emptied.ts";
import type { GroupTransaction } from "./_group_tx.ts";
import type { QueueReader } from "./_reader.ts";
import type { LeasedDomains, MessageRow } from "./_rows.ts";
import type { WriterStatements } from "./_writer.ts";
import {
  type ExpiryPlan,
  type ExpiryTally,
  newTally,
  planExpiry,
  type PlannedReport,
  recordPlan,
  reportsOf,
} from "./_expiry.ts";
import type { MaintenanceOptions, MaintenanceReport } from "./types.ts";

/** How long an expired recipient stays visible (`queue list`) before it is removed. */
export const EXPIRED_GRACE_MS = 86_400_000;
/** Messages expired per pass at most (each is one short transaction). */
export const MAX_EXPIRED_MESSAGES_PER_PASS = 200;
/** Expired recipients removed per pass at most. */
export const MAX_REMOVED_PER_PASS = 1000;
/** Free pages given back per pass at most (4 KiB pages: 16 MiB). */
export const VACUUM_PAGES_PER_PASS = 4096;
/** What the pass needs from the store. */
export interface MaintenanceDeps {
  readonly db: DatabaseSync;
  readonly group: GroupTransaction;
  readonly reader: QueueReader;
  readonly writerSql: WriterStatements;
  readonly log: Logger;
  readonly now: () => number;
  readonly newId: () => string;
  readonly chunkBytes: number;
  readonly leasedDomains: () => LeasedDomains;
  /** Checkpoints the WAL now if nobody waits, else once writes pause (_idle_checkpoint.ts). */
  readonly checkpoint: () => void;
}

/** Runs passes over one store. */
export class QueueMaintenance {
  readonly #deps: MaintenanceDeps;
  readonly #domains: StatementSync;
  readonly #oldInDomain: StatementSync;
  readonly #expire: StatementSync;
  readonly #pastGrace: StatementSync;
  readonly #deleteRecipient: StatementSync;
  readonly #removeIfEmpty: (id: string) => boolean;
  readonly #forgetEmptyUsage: StatementSync;
  readonly #forgetEmptyWaiting: StatementSync;
  readonly #outboundDue: StatementSync;
  readonly #outboundFailed: StatementSync;
  readonly #delayNotified: StatementSync;
  readonly #markDelayNotified: StatementSync;
  readonly #pendingMessages: StatementSync;
  readonly #pendingOf: StatementSync;
  readonly #pendingGone: StatementSync;

  constructor(deps: MaintenanceDeps) {
    this.#deps = deps;
    const { db } = deps;
    this.#domains = db.prepare("SELECT domain FROM domain_usage WHERE messages > 0");
    this.#oldInDomain = db.prepare(
      "SELECT DISTINCT r.message_id FROM recipients r JOIN messages m ON m.id = r.message_id " +
        "WHERE r.domain = ? AND r.expired_at IS NULL AND m.received_at < ? LIMIT ?",
    );
    this.#expire = db.prepare(
      "UPDATE recipients SET status = 'failed', expired_at = ? WHERE id = ? AND expired_at IS NULL",
    );
    this.#pastGrace = db.prepare(
      "SELECT id, message_id FROM recipients WHERE expired_at IS NOT NULL AND expired_at <= ? " +
        "ORDER BY expired_at LIMIT ?",
    );
    this.#deleteRecipient = db.prepare("DELETE FROM recipients WHERE id = ?");
    this.#removeIfEmpty = emptiedRemover(db);
    this.#forgetEmptyUsage = db.prepare("DELETE FROM domain_usage WHERE messages <= 0");
    this.#forgetEmptyWaiting = db.prepare("DELETE FROM route_waiting WHERE messages <= 0");
    // Messages with waiting mx recipients past outbound.max_age, or past delay_notice and
    // without their delay notice yet: a walk over the outbound queue's own index.
    this.#outboundDue = db.prepare(
      "SELECT DISTINCT r.message_id FROM recipients r INDEXED BY recipients_mx_due " +
        "JOIN messages m ON m.id = r.message_id " +
        "WHERE r.route = 'mx' AND r.status = 'queued' " +
        "AND (m.received_at < ?1 OR (m.delay_notified = 0 AND m.received_at < ?2)) LIMIT ?3",
    );
    this.#outboundFailed = db.prepare(
      "SELECT DISTINCT r.message_id FROM recipients r INDEXED BY recipients_mx_failed " +
        "JOIN messages m ON m.id = r.message_id " +
        "WHERE r.route = 'mx' AND r.status = 'failed' AND r.expired_at IS NULL " +
        "AND m.received_at < ? LIMIT ?",
    );
    this.#delayNotified = db.prepare("SELECT delay_notified FROM messages WHERE id = ?");
    this.#markDelayNotified = db.prepare("UPDATE messages SET delay_notified = 1 WHERE id = ?");
    // Failure reports left pending (schema step 11): few rows, each gone once its report is.
    this.#pendingMessages = db.prepare("SELECT DISTINCT message_id FROM report_pending LIMIT ?");
    this.#pendingOf = db.prepare("SELECT recipient_id FROM report_pending WHERE message_id = ?");
    this.#pendingGone = db.prepare(
      "DELETE FROM report_pending WHERE NOT EXISTS (SELECT 1 FROM recipients r " +
        "WHERE r.id = report_pending.recipient_id AND r.message_id = report_pending.message_id)",
    );
  }

  /** One pass; bounded in work, safe to run while sessions write. */
  run(opts: MaintenanceOptions): MaintenanceReport {
    const expired = this.#expireOld(opts);
    const removedRecipients = this.#removePastGrace();
    const vacuumedPages = this.#vacuum();
    return { ...expired, removedRecipients, vacuumedPages };
  }

  #expireOld(opts: MaintenanceOptions): ExpiryTally {
    const now = this.#deps.now();
    const leased = this.#deps.leasedDomains();
    const messageIds = new Set<string>();
    // Rows of recipients removed since (`queue delete`, after expiry) have no report to wait for.
    this.#deps.group.exclusive(() => this.#pendingGone.run());
    for (const hit of this.#pendingMessages.all(MAX_EXPIRED_MESSAGES_PER_PASS)) {
      const id: unknown = hit.message_id;
      if (typeof id === "string") messageIds.add(id);
    }
    for (const row of this.#domains.all()) {
      const domain: unknown = row.domain;
      if (typeof domain !== "string" || leased.atrn.has(domain)) continue;
      const room = MAX_EXPIRED_MESSAGES_PER_PASS - messageIds.size;
      if (room <= 0) break;
      for (const hit of this.#oldInDomain.all(domain, now - opts.maxAgeMs(domain), room)) {
        const id: unknown = hit.message_id;
        if (typeof id === "string") messageIds.add(id);
      }
    }
    const room = MAX_EXPIRED_MESSAGES_PER_PASS - messageIds.size;
    if (room > 0) {
      const cutoffs = outboundCutoffs(now, opts);
      for (const hit of this.#outboundDue.all(cutoffs.expire, cutoffs.delay, room)) {
        const id: unknown = hit.message_id;
        if (typeof id === "string") messageIds.add(id);
      }
    }
    const left = MAX_EXPIRED_MESSAGES_PER_PASS - messageIds.size;
    if (left > 0) {
      for (const hit of this.#outboundFailed.all(now - opts.outboundMaxAgeMs, left)) {
        const id: unknown = hit.message_id;
        if (typeof id === "string") messageIds.add(id);
      }
    }
    let budget = opts.foreignBounceBudget;
    const allowForeign = () => budget > 0 && budget-- > 0;
    const tally = newTally();
    for (const id of messageIds) {
      const done = this.#deps.group.exclusive(() =>
        this.#expireMessage(id, now, leased, opts, allowForeign)
      );
      if (done !== undefined) recordPlan(this.#deps.log, done.message, done.plan, now, tally);
    }
    return tally;
  }

  /** Applies the plan of one message (expiry, reports, delay flag); inside a transaction. */
  #expireMessage(
    id: string,
    now: number,
    leased: LeasedDomains,
    opts: MaintenanceOptions,
    allowForeign: () => boolean,
  ): { message: MessageRow; plan: ExpiryPlan } | undefined {
    const found = this.#deps.reader.message(id);
    if (found === undefined) return undefined;
    const { message } = found;
    const plan = planExpiry({
      message,
      recipients: found.recipients,
      now,
      leased,
      reportPending: new Set(this.#pendingOf.all(id).map((p) => Number(p.recipient_id))),
      delayNotified: this.#delayNotified.get(id)?.delay_notified !== 0,
      newId: this.#deps.newId,
      readPrefix: (maxBytes) => this.#readPrefix(id, maxBytes),
      allowForeign,
    }, opts);
    for (const r of plan.due) this.#expire.run(now, r.id);
    if (plan.markDelayNotified) this.#markDelayNotified.run(id);
    for (const r of plan.reportDone) this.#deps.writerSql.reportDone.run(id, r.id);
    for (const report of reportsOf(plan)) this.#insertReport(report, now);
    return { message, plan };
  }

  /** Queues the report like received mail: `MAIL FROM:<>`, one recipient, the sender. */
  #insertReport(report: PlannedReport, now: number): void {
    const sql = this.#deps.writerSql;
    const step = this.#deps.chunkBytes;
    const { id, bytes } = report;
    for (let seq = 0; seq * step < bytes.length; seq++) {
      sql.insertChunk.run(id, seq, bytes.subarray(seq * step, (seq + 1) * step));
    }
    sql.insertMessage.run(id, now, "", bytes.length, JSON.stringify(report.params), null, null);
    // NOTIFY=NEVER: a report about the report is never wanted (RFC 3461 §5.2.7 spirit).
    sql.insertRecipient.run(
      id,
      report.to,
      report.domain,
      "NEVER",
      null,
      report.route,
      report.route === "mx" ? now : null,
    );
  }

  /**
   * The first `maxBytes` of a stored body (fewer if it is shorter). A body that cannot be read
   * (its file lost) gives none: the report goes without the original's content, and one such
   * message must not stop every later pass.
   */
  #readPrefix(id: string, maxBytes: number): Uint8Array {
    const parts: Uint8Array[] = [];
    let length = 0;
    try {
      for (const chunk of this.#deps.reader.body(id)) {
        const take = chunk.subarray(0, maxBytes - length);
        parts.push(take);
        length += take.length;
        if (length >= maxBytes) break;
      }
    } catch (err) {
      this.#deps.log.error("queue_body_unreadable", { id, reason: errorText(err) });
      return new Uint8Array(0);
    }
    return concatBytes(parts);
  }

  #removePastGrace(): number {
    const cutoff = this.#deps.now() - EXPIRED_GRACE_MS;
    return this.#deps.group.exclusive(() => {
      const touched = new Set<string>();
      let removed = 0;
      for (const row of this.#pastGrace.all(cutoff, MAX_REMOVED_PER_PASS)) {
        const { id, message_id: messageId } = row;
        if (typeof id !== "number" || typeof messageId !== "string") continue;
        this.#deleteRecipient.run(id);
        touched.add(messageId);
        removed++;
      }
      for (const id of touched) this.#removeIfEmpty(id);
      this.#forgetEmptyUsage.run();
      this.#forgetEmptyWaiting.run();
      if (removed > 0) this.#deps.log.info("expired_removed", { recipients: removed });
      return removed;
    });
  }

  /**
   * Gives free pages back to the file system (no full VACUUM) and checkpoints the WAL, now if
   * nobody waits, else once writes pause. The WAL file is not truncated: its space is reused
   * (see WAL_KEEP_BYTES in _wal_sync.ts), which is what keeps the syncs before each 250 cheap.
   */
  #vacuum(): number {
    const { db, group } = this.#deps;
    const free = pragmaNumber(db, "freelist_count");
    let pages = 0;
    if (free > 0) {
      pages = Math.min(free, VACUUM_PAGES_PER_PASS);
      group.exclusive(() => db.prepare(`PRAGMA incremental_vacuum(${pages})`).all());
    }
    // Not in the middle of a burst: copying a WAL of up to 64 MiB would hold sessions up.
    this.#deps.checkpoint();
    return pages;
  }
}

function pragmaNumber(db: DatabaseSync, name: string): number {
  const row: unknown = db.prepare(`PRAGMA ${name}`).get();
  if (typeof row !== "object" || row === null || !(name in row)) return 0;
  const v: unknown = (row as Record<string, unknown>)[name];
  return typeof v === "number" ? v : 0;
}

/** Received before these: expiry (`outbound.max_age`) and delay notice candidates. */
export function outboundCutoffs(
  now: number,
  opts: MaintenanceOptions,
): { expire: number; delay: number } {
  return { expire: now - opts.outboundMaxAgeMs, delay: now - opts.delayNoticeMs };
}
