/**
 * The maintenance decision for one message, pure and shared by both backends: which
 * recipients are past their max age (a route-"atrn" recipient its domain's, a route-"mx" one
 * `outbound.max_age`) with a failure DSN to the sender, and whether the one delay DSN of the
 * message (mx recipients still waiting after `outbound.delay_notice`) goes now. Who gets a
 * report and by which route are the rules of bounce.ts. A recipient settled failed whose report
 * is still pending (its write failed, or the process died before it) gets it here. It reads
 * no rows and writes none;
 * each backend applies the plan in one transaction.
 */
import type { Logger } from "../observe/log.ts";
import { isLeased, type LeasedDomains, type MessageRow, type RecipientRow } from "./_rows.ts";
import {
  bounceRoute,
  MAX_PREFIX_BYTES,
  prefixWanted,
  refusedRecipient,
  replyStatus,
  reportHead,
  reportParams,
  returnedContent,
  wantsNotice,
} from "./bounce.ts";
import { buildFailureDsn, type DsnRecipient } from "./dsn.ts";
import type { MaintenanceOptions, MessageParams, Route } from "./types.ts";

export { MAX_PREFIX_BYTES };

/** The report to queue: `MAIL FROM:<>`, one recipient (the sender), NOTIFY=NEVER. */
export interface PlannedReport {
  readonly id: string;
  readonly bytes: Uint8Array;
  readonly to: string;
  readonly domain: string;
  readonly route: Route;
  readonly params: MessageParams;
}

/** One report of a plan. */
export type ReportPlan =
  | { readonly kind: "none" }
  | { readonly kind: "dropped"; readonly reason: string }
  | { readonly kind: "queued"; readonly report: PlannedReport };

/** What to do with one message. */
export interface ExpiryPlan {
  readonly due: readonly RecipientRow[];
  /** The failure report about `due`. */
  readonly dsn: ReportPlan;
  /** The failure report of recipients settled failed whose report is pending. */
  readonly refused: ReportPlan;
  /** Those recipients: the pending mark goes in the plan's transaction (queued or not). */
  readonly reportDone: readonly RecipientRow[];
  /** The delay report (RFC 3464 `Action: delayed`). */
  readonly delay: ReportPlan;
  /** Record that the message had its delay notice (sent, dropped, or not wanted): never again. */
  readonly markDelayNotified: boolean;
}

/** What the plan reads. */
export interface ExpiryInput {
  readonly message: MessageRow;
  readonly recipients: readonly RecipientRow[];
  readonly now: number;
  readonly leased: LeasedDomains;
  /** Ids of the message's failed recipients whose report is pending (`report_pending`). */
  readonly reportPending: ReadonlySet<number>;
  /** The message's delay notice went out already (or was decided against). */
  readonly delayNotified: boolean;
  readonly newId: () => string;
  /** The body's first `maxBytes` (at most MAX_PREFIX_BYTES are asked for). */
  readonly readPrefix: (maxBytes: number) => Uint8Array;
  /** Asked once per report to a foreign sender; false: the budget is spent (dropped). */
  readonly allowForeign: () => boolean;
}

const NONE: ReportPlan = { kind: "none" };

/** Decides the expiry and the delay notice of `input.message` at `input.now`. */
export function planExpiry(input: ExpiryInput, opts: MaintenanceOptions): ExpiryPlan {
  const { message, now } = input;
  const age = now - message.receivedAt;
  const waiting = input.recipients.filter((r) =>
    r.expiredAt === undefined && r.stored === "queued" && !isLeased(input.leased, r)
  );
  const due = input.recipients.filter((r) =>
    r.expiredAt === undefined && !isLeased(input.leased, r) &&
    age > (r.route === "mx" ? opts.outboundMaxAgeMs : opts.maxAgeMs(r.domain))
  );
  const delayed = input.delayNotified || age <= opts.delayNoticeMs
    ? []
    : waiting.filter((r) => r.route === "mx" && !due.includes(r));
  // A recipient stored as failed had its report queued when it failed (bounce.ts: the drain,
  // the outbound worker) or has it pending, sent below: expiring it sends no second one.
  // Under a live lease its drain or worker may be queuing it right now: left to a later pass.
  const reportDone = input.recipients.filter((r) =>
    r.stored === "failed" && input.reportPending.has(r.id) && !isLeased(input.leased, r)
  );
  const refusedTo = reportDone.filter((r) => wantsNotice(r.notify, "FAILURE"));
  const refused = refusedTo.length === 0 ? NONE : report(
    input,
    opts,
    refusedTo.map((r) =>
      r.lastReply === undefined
        ? {
          address: r.address,
          ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
          status: "5.0.0",
        }
        : refusedRecipient(r, r.lastReply)
    ),
    "refused",
  );
  const failureTo = due.filter((r) => r.stored === "queued" && wantsNotice(r.notify, "FAILURE"));
  const delayTo = delayed.filter((r) => wantsNotice(r.notify, "DELAY"));
  const dsn = failureTo.length === 0
    ? NONE
    : report(input, opts, failureTo.map((r) => toDsnRecipient(r, "failed")), "expired");
  const delay = delayTo.length === 0
    ? NONE
    : report(input, opts, delayTo.map((r) => toDsnRecipient(r, "delayed")), "delayed");
  return { due, dsn, refused, reportDone, delay, markDelayNotified: delayed.length > 0 };
}

function report(
  input: ExpiryInput,
  opts: MaintenanceOptions,
  recipients: readonly DsnRecipient[],
  reason: "expired" | "refused" | "delayed",
): ReportPlan {
  const { message } = input;
  const decision = bounceRoute(message.mailFrom, opts.isLocalDomain, input.allowForeign);
  if (decision.kind === "none") return NONE;
  if (decision.kind === "dropped") return { kind: "dropped", reason: decision.reason };
  const reportId = input.newId();
  const prefix = input.readPrefix(Math.min(MAX_PREFIX_BYTES, prefixWanted(message)));
  const bytes = buildFailureDsn({
    ...reportHead(message, opts.hostname, reportId, input.now),
    recipients,
    // A delay report returns the headers only: the message itself is still on its way.
    returned: returnedContent(message, prefix, reason === "delayed"),
    reason,
    ...(reason === "delayed" ? { willRetryUntil: message.receivedAt + opts.outboundMaxAgeMs } : {}),
  });
  return {
    kind: "queued",
    report: {
      id: reportId,
      bytes,
      to: decision.to,
      domain: decision.domain,
      route: decision.route,
      params: reportParams(bytes),
    },
  };
}

function toDsnRecipient(r: RecipientRow, action: "failed" | "delayed"): DsnRecipient {
  // A delay report gives the last transient status seen (4.x.x), if any.
  const status = r.lastReply === undefined ? undefined : replyStatus(r.lastReply);
  return {
    address: r.address,
    ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
    ...(r.lastReply !== undefined ? { lastReply: r.lastReply } : {}),
    ...(action === "delayed" && status?.startsWith("4.") ? { status } : {}),
  };
}

/** What the expiry part of a pass did (MaintenanceReport's counters). */
export interface ExpiryTally {
  expiredRecipients: number;
  dsnQueued: number;
  dsnDropped: number;
  delayNotices: number;
  foreignDsnQueued: number;
}

/** A tally at zero. */
export function newTally(): ExpiryTally {
  return {
    expiredRecipients: 0,
    dsnQueued: 0,
    dsnDropped: 0,
    delayNotices: 0,
    foreignDsnQueued: 0,
  };
}

/** Logs what an applied plan did and counts it; called once its transaction committed. */
export function recordPlan(
  log: Logger,
  message: MessageRow,
  plan: ExpiryPlan,
  now: number,
  tally: ExpiryTally,
): void {
  const { id } = message;
  for (const r of plan.due) {
    log.info("recipient_expired", {
      id,
      recipient: r.address,
      domain: r.domain,
      route: r.route,
      age_s: Math.floor((now - message.receivedAt) / 1000),
    });
  }
  tally.expiredRecipients += plan.due.length;
  const plans = [["failure", plan.dsn], ["failure", plan.refused], ["delay", plan.delay]] as const;
  for (const [kind, p] of plans) {
    if (p.kind === "dropped") {
      log.info("dsn_dropped", { id, kind, reason: p.reason });
      tally.dsnDropped++;
    }
    if (p.kind !== "queued") continue;
    log.info("dsn_queued", {
      id,
      kind,
      dsn: p.report.id,
      to_domain: p.report.domain,
      route: p.report.route,
    });
    if (kind === "failure") tally.dsnQueued++;
    else tally.delayNotices++;
    if (p.report.route === "mx") tally.foreignDsnQueued++;
  }
}

/** The reports of a plan that are to be queued. */
export function reportsOf(plan: ExpiryPlan): PlannedReport[] {
  const out: PlannedReport[] = [];
  if (plan.dsn.kind === "queued") out.push(plan.dsn.report);
  if (plan.refused.kind === "queued") out.push(plan.refused.report);
  if (plan.delay.kind === "queued") out.push(plan.delay.report);
  return out;
}
