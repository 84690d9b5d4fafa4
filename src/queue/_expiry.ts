/**
 * The expiry decision for one message, pure and shared by both backends: which recipients are
 * past their domain's max age, and whether a failure DSN (RFC 3464) goes back to the sender.
 * It reads no rows and writes none; each backend applies the plan in one transaction.
 */
import { domainToASCII } from "node:url";
import { isLeased, type LeasedDomains, type MessageRow, type RecipientRow } from "./_rows.ts";
import { buildFailureDsn, type DsnRecipient, headerBlock } from "./dsn.ts";
import type { MaintenanceOptions, MessageParams } from "./types.ts";

/** Header bytes returned in a DSN at most (RET=HDRS, the default). */
export const MAX_RETURNED_HEADER_BYTES = 64 * 1024;
/** RET=FULL returns the whole message only up to this size; bigger ones get headers only. */
export const MAX_RETURNED_FULL_BYTES = 64 * 1024;
/** How much of the body a plan may need (the caller reads at most this much). */
export const MAX_PREFIX_BYTES = Math.max(MAX_RETURNED_HEADER_BYTES, MAX_RETURNED_FULL_BYTES);

/** The report to queue: `MAIL FROM:<>`, one recipient (the sender), NOTIFY=NEVER. */
export interface PlannedReport {
  readonly id: string;
  readonly bytes: Uint8Array;
  readonly to: string;
  readonly domain: string;
  readonly params: MessageParams;
}

/** What to do with one message. */
export interface ExpiryPlan {
  readonly due: readonly RecipientRow[];
  readonly dsn:
    | { readonly kind: "none" }
    | { readonly kind: "dropped"; readonly reason: string }
    | { readonly kind: "queued"; readonly report: PlannedReport };
}

/** Decides the expiry of `message` at `now`; `readPrefix(n)` gives the body's first n bytes. */
export function planExpiry(
  input: {
    readonly message: MessageRow;
    readonly recipients: readonly RecipientRow[];
    readonly now: number;
    readonly leased: LeasedDomains;
    readonly newId: () => string;
    readonly readPrefix: (maxBytes: number) => Uint8Array;
  },
  opts: MaintenanceOptions,
): ExpiryPlan {
  const { message, now } = input;
  const due = input.recipients.filter((r) =>
    r.expiredAt === undefined && !isLeased(input.leased, r) &&
    message.receivedAt < now - (r.route === "mx" ? opts.outboundMaxAgeMs : opts.maxAgeMs(r.domain))
  );
  if (due.length === 0) return { due, dsn: { kind: "none" } };
  // Never bounce a bounce (RFC 5321 §6.1).
  if (message.mailFrom === "") return { due, dsn: { kind: "none" } };
  const notified = due.filter(wantsFailureNotice);
  if (notified.length === 0) return { due, dsn: { kind: "none" } };
  const senderDomain = domainOf(message.mailFrom);
  if (senderDomain === undefined || !opts.isLocalDomain(senderDomain)) {
    return {
      due,
      dsn: {
        kind: "dropped",
        reason: "sender domain is not local and outbound delivery does not exist yet",
      },
    };
  }
  const reportId = input.newId();
  const wantsFull = message.params.ret === "FULL" && message.size <= MAX_RETURNED_FULL_BYTES;
  const returned = wantsFull
    ? { kind: "full" as const, bytes: input.readPrefix(MAX_RETURNED_FULL_BYTES) }
    : {
      kind: "headers" as const,
      bytes: headerBlock(input.readPrefix(MAX_RETURNED_HEADER_BYTES), MAX_RETURNED_HEADER_BYTES),
    };
  const bytes = buildFailureDsn({
    reportingMta: opts.hostname,
    reportId,
    originalId: message.id,
    originalSender: message.mailFrom,
    ...(message.params.envid !== undefined ? { envid: message.params.envid } : {}),
    arrivalDate: message.receivedAt,
    date: now,
    recipients: notified.map(toDsnRecipient),
    returned,
  });
  const params: MessageParams = hasEightBit(bytes) ? { body: "8BITMIME" } : {};
  return {
    due,
    dsn: {
      kind: "queued",
      report: { id: reportId, bytes, to: message.mailFrom, domain: senderDomain, params },
    },
  };
}

/** RFC 3461 §4.1: no NOTIFY means "FAILURE"; NEVER, or a list without FAILURE, means none. */
function wantsFailureNotice(r: RecipientRow): boolean {
  if (r.notify === undefined) return true;
  return r.notify.toUpperCase().split(",").some((w) => w.trim() === "FAILURE");
}

function toDsnRecipient(r: RecipientRow): DsnRecipient {
  return {
    address: r.address,
    ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
    ...(r.lastReply !== undefined ? { lastReply: r.lastReply } : {}),
  };
}

/** Lower-case A-label of an address's domain, or undefined. */
export function domainOf(address: string): string | undefined {
  const at = address.lastIndexOf("@");
  if (at < 0) return undefined;
  const domain = domainToASCII(address.slice(at + 1).toLowerCase());
  return domain === "" ? undefined : domain;
}

function hasEightBit(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b >= 0x80) return true;
  return false;
}
