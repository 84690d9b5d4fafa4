/**
 * Failure DSNs (RFC 3464) for recipients the drain settled as failed: refused permanently by
 * the customer, or in a stored message that cannot be relayed. The rules are those of expiry
 * (`src/queue/_maintenance.ts`): never for `<>` (no bounce of a bounce, RFC 5321 §6.1), only
 * for recipients whose NOTIFY asks for failures (RFC 3461 §4.1), and queued only when the
 * sender's domain is one of ours (there is no outbound delivery to reach others yet).
 */
import type { QueuedMessage, QueueStore } from "../queue/types.ts";
import { buildFailureDsn, type DsnRecipient, headerBlock } from "../queue/dsn.ts";
import { normalizeDomain } from "../auth/domain.ts";
import { concatBytes } from "../wire/bytes.ts";
import type { Logger } from "../observe/log.ts";

/** What bouncing needs. */
export interface BounceOptions {
  readonly store: QueueStore;
  /** Our host name (Reporting-MTA, the report's From: domain). */
  readonly hostname: string;
  /** True when some user owns `domain`. */
  readonly isLocalDomain: (domain: string) => boolean;
  readonly now?: () => number;
}

/** One failed recipient with the reply that failed it (as settled: `554 5.6.0 …`). */
export interface FailedRecipient {
  readonly id: number;
  readonly reply: string;
}

/** Header bytes returned in the report at most (as for expiry). */
const MAX_RETURNED_HEADER_BYTES = 64 * 1024;
/** RET=FULL returns the whole message only up to this size (as for expiry). */
const MAX_RETURNED_FULL_BYTES = 64 * 1024;
const STATUS_RE = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})(?:\s|$)/;

/** Queues one report for `failed` of `message`, or says why not. Never throws. */
export async function bounceFailed(
  message: QueuedMessage,
  failed: readonly FailedRecipient[],
  opts: BounceOptions & { readonly log: Logger },
): Promise<"queued" | "dropped" | "none"> {
  if (message.mailFrom === "" || failed.length === 0) return "none";
  const notified: DsnRecipient[] = [];
  for (const f of failed) {
    const r = message.recipients.find((q) => q.id === f.id);
    if (r === undefined || !wantsFailureNotice(r.notify)) continue;
    notified.push({
      address: r.address,
      ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
      lastReply: f.reply,
      status: STATUS_RE.exec(f.reply)?.[1] ?? "5.0.0",
    });
  }
  if (notified.length === 0) return "none";
  const at = message.mailFrom.lastIndexOf("@");
  const senderDomain = at < 0 ? undefined : normalizeDomain(message.mailFrom.slice(at + 1));
  if (senderDomain === undefined || !opts.isLocalDomain(senderDomain)) {
    opts.log.info("dsn_dropped", {
      id: message.id,
      reason: "sender domain is not local and outbound delivery does not exist yet",
    });
    return "dropped";
  }
  try {
    const { store } = opts;
    const now = (opts.now ?? Date.now)();
    const reportId = await store.newId();
    const wantsFull = message.params.ret === "FULL" && message.size <= MAX_RETURNED_FULL_BYTES;
    const prefix = await readPrefix(
      store,
      message.id,
      wantsFull ? MAX_RETURNED_FULL_BYTES : MAX_RETURNED_HEADER_BYTES,
    );
    const bytes = buildFailureDsn({
      reportingMta: opts.hostname,
      reportId,
      originalId: message.id,
      originalSender: message.mailFrom,
      ...(message.params.envid !== undefined ? { envid: message.params.envid } : {}),
      arrivalDate: message.receivedAt,
      date: now,
      recipients: notified,
      returned: wantsFull
        ? { kind: "full", bytes: prefix }
        : { kind: "headers", bytes: headerBlock(prefix, MAX_RETURNED_HEADER_BYTES) },
      reason: "refused",
    });
    const writer = await store.begin({
      id: reportId,
      mailFrom: "",
      params: hasEightBit(bytes) ? { body: "8BITMIME" } : {},
      // NOTIFY=NEVER: a report about the report is never wanted (RFC 3461 §5.2.7 spirit).
      recipients: [{ address: message.mailFrom, domain: senderDomain, notify: "NEVER" }],
    });
    await writer.write(bytes);
    await writer.commit();
    opts.log.info("dsn_queued", { id: message.id, dsn: reportId, to_domain: senderDomain });
    return "queued";
  } catch (err) {
    // The recipients stay failed (`queue show` has the reply); only the report is missing.
    opts.log.error("dsn_failed", { id: message.id, error: String(err) });
    return "none";
  }
}

/** RFC 3461 §4.1: no NOTIFY means "FAILURE"; NEVER, or a list without FAILURE, means none. */
function wantsFailureNotice(notify: string | undefined): boolean {
  if (notify === undefined) return true;
  return notify.toUpperCase().split(",").some((w) => w.trim() === "FAILURE");
}

/** The first `maxBytes` of a stored body (fewer if it is shorter). */
async function readPrefix(store: QueueStore, id: string, maxBytes: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of store.readBody(id)) {
    const take = chunk.subarray(0, maxBytes - length);
    parts.push(take);
    length += take.length;
    if (length >= maxBytes) break;
  }
  return concatBytes(parts);
}

function hasEightBit(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b >= 0x80) return true;
  return false;
}
