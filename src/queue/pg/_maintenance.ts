/**
 * One maintenance pass on PostgreSQL: expiry with failure DSNs and the one delay DSN of an
 * outbound message (the plan of src/queue/_expiry.ts),
 * removal of expired recipients after the grace period, and of body chunks whose message never
 * committed. Every node runs passes; a session advisory lock lets only one do it at a time, so
 * no work is done twice, and a node that dies drops the lock with its connection. Space is
 * given back by PostgreSQL's autovacuum (vacuumedPages is 0). Its statements go on the pool
 * with no statement timeout, each call and transaction under the long calls' deadline
 * (PG_LONG_DEADLINE_MS, _deadline.ts): a connection gone silent failed no pass before, and
 * passes never overlap, so none ran again on that node (no expiry, no owed report, no delay
 * notice). A lock query past it drops its reserved connection, and the lock with its session.
 */
import type { Logger } from "../../observe/log.ts";
import {
  type ExpiryPlan,
  type ExpiryTally,
  MAX_PREFIX_BYTES,
  newTally,
  planExpiry,
  type PlannedReport,
  recordPlan,
  reportsOf,
} from "../_expiry.ts";
import { readPrefix } from "../bounce.ts";
import {
  EXPIRED_GRACE_MS,
  MAX_EXPIRED_MESSAGES_PER_PASS,
  MAX_REMOVED_PER_PASS,
  outboundCutoffs,
} from "../_maintenance.ts";
import { type LeasedDomains, type MessageRow, type RecipientRow, writeParams } from "../_rows.ts";
import type { MaintenanceOptions, MaintenanceReport } from "../types.ts";
import { DATABASE_CLOCK, type LeaseClock, NODE_CLOCK_SKEW_MS } from "./_clock.ts";
import type { Sql, Tx } from "./connect.ts";
import { PgDeadlineError, transactionWithin, within } from "./_deadline.ts";
import { deleteEmptied, lockMessages, messageIdsOf } from "./_emptied.ts";
import type { PgReader } from "./_reader.ts";

/** Advisory lock key of maintenance passes. */
const MAINTENANCE_LOCK = 0x6f646d73;
/** Chunks without a message are removed once this old (a crash mid-DATA, or a failed commit). */
const ORPHAN_AGE_MS = 86_400_000;
/** Orphan chunks are looked for every this many passes (it reads the whole chunk table). */
const ORPHAN_EVERY_PASSES = 60;
/** Rolls a message's plan back when what it read changed under it (reports, recipients, leases). */
const PLANNED_AGAIN = new Error("changed since read: planned again next pass");

const NOTHING: MaintenanceReport = {
  expiredRecipients: 0,
  dsnQueued: 0,
  dsnDropped: 0,
  delayNotices: 0,
  foreignDsnQueued: 0,
  removedRecipients: 0,
  vacuumedPages: 0,
};

/**
 * Whether a live lease (on the database's clock, _clock.ts) holds one of `due`'s queued
 * recipients: an ATRN one's domain in `domain_leases`, or an mx one's in `outbound_leases` when
 * it is due (an outbound lease lists only those: src/queue/_rows.ts isLeased). The domains' rows
 * are locked first as a claim's upsert locks them (inserting an expired placeholder where there
 * is none, removed again before COMMIT), in domain order like claims: a claim in flight is
 * waited for and seen, and a later one waits for this transaction's COMMIT, after which its
 * drain no longer lists the expired recipients.
 */
async function isLeasedNow(
  tx: Tx,
  due: readonly RecipientRow[],
  now: () => number,
  clock: LeaseClock,
): Promise<boolean> {
  const queued = due.filter((r) => r.stored === "queued");
  const live = { atrn: new Set<string>(), mx: new Set<string>() };
  for (const route of ["atrn", "mx"] as const) {
    const domains = [...new Set(queued.filter((r) => r.route === route).map((r) => r.domain))]
      .sort();
    if (domains.length === 0) continue;
    const table = tx(route === "mx" ? "outbound_leases" : "domain_leases");
    for (const domain of domains) {
      await tx`INSERT INTO ${table} AS l (domain, owner, lease_until) VALUES (${domain}, '', 0)
        ON CONFLICT (domain) DO UPDATE SET owner = l.owner WHERE false`;
    }
    const rows = await tx`SELECT domain FROM ${table}
      WHERE domain = ANY(${domains}::text[]) AND lease_until > ${clock(tx)}`;
    for (const r of rows) live[route].add(String(r.domain));
    await tx`DELETE FROM ${table}
      WHERE domain = ANY(${domains}::text[]) AND owner = '' AND lease_until = 0`;
  }
  // Read after the locks: every lease live now was claimed by then, due by at most this (on
  // the claiming node's clock, which may run ahead of ours).
  const dueBy = now() + NODE_CLOCK_SKEW_MS;
  return queued.some((r) =>
    live[r.route].has(r.domain) && (r.route === "atrn" || (r.nextAttemptAt ?? 0) <= dueBy)
  );
}

/** What a pass needs from the store. */
export interface PgMaintenanceDeps {
  readonly sql: Sql;
  readonly reader: PgReader;
  readonly log: Logger;
  readonly now: () => number;
  readonly newId: () => string;
  readonly chunkBytes: number;
  readonly leasedDomains: () => Promise<LeasedDomains>;
  /** Lease times (default: the database's clock, _clock.ts). */
  readonly leaseClock?: LeaseClock;
  /** How long each call or transaction of a pass may wait (PG_LONG_DEADLINE_MS). */
  readonly deadlineMs: number;
}

/** Runs passes over one store. */
export class PgMaintenance {
  readonly #deps: PgMaintenanceDeps;
  #passes = 0;

  constructor(deps: PgMaintenanceDeps) {
    this.#deps = deps;
  }

  /** One pass, or nothing when another node is running one. */
  async run(opts: MaintenanceOptions): Promise<MaintenanceReport> {
    const ms = this.#deps.deadlineMs;
    const reserving = this.#deps.sql.reserve();
    const conn = await within(reserving, ms, "maintenance connection").catch((err) => {
      // Reserved late: handed back to the pool then.
      reserving.then((late) => late.release(), () => {});
      throw err;
    });
    let isDropped = false;
    /** A query on the reserved connection; past the deadline, the connection is dropped. */
    const locking = <T>(query: PromiseLike<T>, what: string) =>
      within(query, ms, what).catch((err) => {
        if (err instanceof PgDeadlineError && !isDropped) {
          isDropped = true;
          conn.destroyConnection();
        }
        throw err;
      });
    try {
      const [row] = await locking(
        conn`SELECT pg_try_advisory_lock(${MAINTENANCE_LOCK}) AS ok`,
        "maintenance lock",
      );
      if (row?.ok !== true) return NOTHING;
      try {
        const expired = await this.#expireOld(opts);
        const removedRecipients = await this.#removePastGrace();
        if (this.#passes++ % ORPHAN_EVERY_PASSES === 0) await this.#removeOrphans();
        return { ...expired, removedRecipients, vacuumedPages: 0 };
      } finally {
        // A dropped connection's session, and the lock with it, is gone.
        if (!isDropped) {
          await locking(conn`SELECT pg_advisory_unlock(${MAINTENANCE_LOCK})`, "maintenance unlock");
        }
      }
    } finally {
      conn.release();
    }
  }

  /** `query`'s answer within the pass's deadline (_deadline.ts `within`). */
  #within<T>(query: PromiseLike<T>, what: string): Promise<T> {
    return within(query, this.#deps.deadlineMs, what);
  }

  async #expireOld(opts: MaintenanceOptions): Promise<ExpiryTally> {
    const { sql } = this.#deps;
    const now = this.#deps.now();
    const read = await this.#deps.leasedDomains();
    // A lease lists what is due by its claiming node's clock, which may run ahead of ours.
    const leased = { ...read, now: read.now + NODE_CLOCK_SKEW_MS };
    // A loose index scan: one index probe per domain, not a read of every recipient.
    const domains = await this.#within(
      sql`WITH RECURSIVE d AS (
        SELECT min(domain) AS domain FROM recipients
        UNION ALL
        SELECT (SELECT min(domain) FROM recipients WHERE domain > d.domain) FROM d
        WHERE d.domain IS NOT NULL)
      SELECT domain FROM d WHERE domain IS NOT NULL`,
      "domains to expire",
    );
    const ids = new Set<string>();
    // Failure reports left pending (schema step 6); rows of recipients removed since have none.
    await this.#within(
      sql`DELETE FROM report_pending p WHERE NOT EXISTS (SELECT 1 FROM recipients r
        WHERE r.id = p.recipient_id AND r.message_id = p.message_id)`,
      "removal of stale owed reports",
    );
    const pending = await this.#within(
      sql`SELECT DISTINCT message_id FROM report_pending LIMIT ${MAX_EXPIRED_MESSAGES_PER_PASS}`,
      "owed reports",
    );
    for (const h of pending) ids.add(String(h.message_id));
    for (const { domain } of domains) {
      const name = String(domain);
      const room = MAX_EXPIRED_MESSAGES_PER_PASS - ids.size;
      if (room <= 0) break;
      if (leased.atrn.has(name)) continue;
      const hits = await this.#within(
        sql`SELECT DISTINCT r.message_id FROM recipients r
          JOIN messages m ON m.id = r.message_id
          WHERE r.domain = ${name} AND r.route = 'atrn' AND r.expired_at IS NULL
            AND m.received_at < ${now - opts.maxAgeMs(name)} LIMIT ${room}`,
        "expired mail",
      );
      for (const h of hits) ids.add(String(h.message_id));
    }
    const room = MAX_EXPIRED_MESSAGES_PER_PASS - ids.size;
    if (room > 0) {
      // Waiting mx recipients past outbound.max_age, or past delay_notice without the notice.
      const cut = outboundCutoffs(now, opts);
      const hits = await this.#within(
        sql`SELECT DISTINCT r.message_id FROM recipients r
          JOIN messages m ON m.id = r.message_id
          WHERE r.route = 'mx' AND r.status = 'queued' AND (m.received_at < ${cut.expire}
            OR (NOT m.delay_notified AND m.received_at < ${cut.delay})) LIMIT ${room}`,
        "outbound mail due a notice",
      );
      for (const h of hits) ids.add(String(h.message_id));
    }
    const left = MAX_EXPIRED_MESSAGES_PER_PASS - ids.size;
    if (left > 0) {
      // Refused for good (5xx at their MX) and past outbound.max_age: expire, removed later.
      const hits = await this.#within(
        sql`SELECT DISTINCT r.message_id FROM recipients r
          JOIN messages m ON m.id = r.message_id
          WHERE r.route = 'mx' AND r.status = 'failed' AND r.expired_at IS NULL
            AND m.received_at < ${now - opts.outboundMaxAgeMs} LIMIT ${left}`,
        "refused outbound mail",
      );
      for (const h of hits) ids.add(String(h.message_id));
    }
    let budget = opts.foreignBounceBudget;
    const allowForeign = () => budget > 0 && budget-- > 0;
    const tally = newTally();
    for (const id of ids) {
      const done = await this.#expireMessage(id, now, leased, opts, allowForeign);
      if (done !== undefined) recordPlan(this.#deps.log, done.message, done.plan, now, tally);
    }
    return tally;
  }

  async #expireMessage(
    id: string,
    now: number,
    leased: LeasedDomains,
    opts: MaintenanceOptions,
    allowForeign: () => boolean,
  ): Promise<{ message: MessageRow; plan: ExpiryPlan } | undefined> {
    const found = await this.#deps.reader.one(id);
    if (found === undefined) return undefined;
    const { message } = found;
    const { sql } = this.#deps;
    const [flag] = await this.#within(
      sql`SELECT delay_notified FROM messages WHERE id = ${id}`,
      "delay notice of a message",
    );
    const pending = await this.#within(
      sql`SELECT recipient_id FROM report_pending WHERE message_id = ${id}`,
      "owed reports of a message",
    );
    const prefix = message.mailFrom === ""
      ? new Uint8Array(0)
      : await readPrefix(this.#deps.reader.body(id), MAX_PREFIX_BYTES);
    const plan = planExpiry({
      message,
      recipients: found.recipients,
      now,
      leased,
      reportPending: new Set(pending.map((p) => Number(p.recipient_id))),
      delayNotified: flag?.delay_notified !== false,
      newId: this.#deps.newId,
      readPrefix: (maxBytes) => prefix.subarray(0, maxBytes),
      allowForeign,
    }, opts);
    const reports = reportsOf(plan);
    const done = plan.reportDone.map((r) => r.id);
    if (
      plan.due.length === 0 && !plan.markDelayNotified && reports.length === 0 && done.length === 0
    ) return undefined;
    // A COMMIT answered late needs no undo: what it did is whole, and the next pass reads it.
    const applied = await transactionWithin(sql, this.#deps.deadlineMs, "expiry", async (tx) => {
      // The leases were read at the pass's start: a claim (any node) may have taken a due
      // recipient's domain since, and be delivering it. Its lease rows are locked here the
      // way a claim locks them, so a claim and this expiry cannot both win.
      const clock = this.#deps.leaseClock ?? DATABASE_CLOCK;
      if (await isLeasedNow(tx, plan.due, this.#deps.now, clock)) throw PLANNED_AGAIN;
      // Then the message (the order of _emptied.ts: messages before their recipients).
      const [row] = await tx`SELECT delay_notified FROM messages WHERE id = ${id} FOR UPDATE`;
      if (row === undefined) throw PLANNED_AGAIN;
      // Its delay notice went out since the flag was read: another node's pass ran meanwhile
      // (this pass's lock session ended under it, so both held the lock).
      if (plan.markDelayNotified && row.delay_notified !== false) throw PLANNED_AGAIN;
      if (done.length > 0) {
        const gone = await tx`DELETE FROM report_pending WHERE message_id = ${id}
          AND recipient_id = ANY(${done}::bigint[]) RETURNING recipient_id`;
        // Another node's drain or worker queued some of them since they were read (its lease
        // lapsed meanwhile): nothing of this plan is applied, the next pass plans again.
        if (gone.length !== done.length) throw PLANNED_AGAIN;
      }
      if (plan.due.length > 0) {
        // Each as the plan read it: one delivered (gone) or failed since is not reported.
        const hit = await tx`UPDATE recipients r SET status = 'failed', expired_at = ${now}
          FROM unnest(${plan.due.map((r) => r.id)}::bigint[],
            ${plan.due.map((r) => r.stored)}::text[]) AS u(id, status)
          WHERE r.id = u.id AND r.status = u.status AND r.expired_at IS NULL RETURNING r.id`;
        if (hit.length !== plan.due.length) throw PLANNED_AGAIN;
      }
      if (plan.markDelayNotified) {
        await tx`UPDATE messages SET delay_notified = true WHERE id = ${id}`;
      }
      for (const report of reports) await this.#insertReport(tx, report, now);
      return true;
    }, () => {}).catch((err) => {
      if (err === PLANNED_AGAIN) return false;
      throw err;
    });
    return applied ? { message, plan } : undefined;
  }

  async #insertReport(tx: Tx, report: PlannedReport, now: number): Promise<void> {
    const step = this.#deps.chunkBytes;
    const { id, bytes } = report;
    for (let seq = 0; seq * step < bytes.length; seq++) {
      await tx`INSERT INTO message_chunks (message_id, seq, bytes, created_at)
        VALUES (${id}, ${seq}, ${bytes.slice(seq * step, (seq + 1) * step)}, ${now})`;
    }
    await tx`INSERT INTO messages (id, received_at, mail_from, size, params)
      VALUES (${id}, ${now}, '', ${bytes.length}, ${writeParams(report.params)})`;
    // NOTIFY=NEVER: a report about the report is never wanted (RFC 3461 §5.2.7 spirit).
    await tx`INSERT INTO recipients (message_id, address, domain, notify, route, next_attempt_at)
      VALUES (${id}, ${report.to}, ${report.domain}, 'NEVER', ${report.route},
        ${report.route === "mx" ? now : null})`;
  }

  async #removePastGrace(): Promise<number> {
    const cutoff = this.#deps.now() - EXPIRED_GRACE_MS;
    const { sql, deadlineMs } = this.#deps;
    return await transactionWithin(sql, deadlineMs, "removal after the grace", async (tx) => {
      const due = await tx`SELECT id, message_id FROM recipients
        WHERE expired_at IS NOT NULL AND expired_at <= ${cutoff}
        ORDER BY expired_at LIMIT ${MAX_REMOVED_PER_PASS}`;
      // Their messages locked first (_emptied.ts).
      await lockMessages(tx, messageIdsOf(due));
      const gone = await tx`DELETE FROM recipients WHERE id = ANY(${
        due.map((r) => String(r.id))
      }::bigint[]) RETURNING message_id`;
      await deleteEmptied(tx, messageIdsOf(gone));
      if (gone.length > 0) this.#deps.log.info("expired_removed", { recipients: gone.length });
      return gone.length;
    }, () => {});
  }

  async #removeOrphans(): Promise<void> {
    const cutoff = this.#deps.now() - ORPHAN_AGE_MS;
    const gone = await this.#within(
      this.#deps.sql`DELETE FROM message_chunks c WHERE c.created_at < ${cutoff}
        AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = c.message_id) RETURNING message_id`,
      "orphan chunks",
    );
    if (gone.length > 0) this.#deps.log.info("queue_orphans_removed", { chunks: gone.length });
  }
}
