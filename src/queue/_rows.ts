/**
 * Validators for rows read back from SQLite: everything is `unknown` until checked here.
 * A row that fails returns undefined; the caller logs it and skips it (docs/architecture.md "Conventions").
 */
import type {
  MessageParams,
  QueuedMessage,
  QueuedRecipient,
  RecipientStatus,
  Route,
} from "./types.ts";

/**
 * A `messages` row, checked, before its recipients are attached. A NULL `submitter` (received
 * mail, rows of before schema step 13) is absent.
 */
export type MessageRow = Omit<QueuedMessage, "recipients">;

/** A `recipients` row, checked, with its stored status (`queued` or `failed`). */
export interface RecipientRow {
  readonly id: number;
  readonly messageId: string;
  readonly address: string;
  readonly domain: string;
  readonly stored: "queued" | "failed";
  readonly attempts: number;
  readonly lastReply: string | undefined;
  readonly notify: string | undefined;
  readonly orcpt: string | undefined;
  /** When the maintenance pass expired it (milliseconds since the epoch), if it did. */
  readonly expiredAt: number | undefined;
  readonly route: Route;
  /** Route "mx": when it is due (milliseconds since the epoch). */
  readonly nextAttemptAt: number | undefined;
}

/** Domains under a live lease, per namespace (ATRN domain leases, outbound leases). */
export interface LeasedDomains {
  readonly atrn: ReadonlySet<string>;
  readonly mx: ReadonlySet<string>;
  /** When the sets were read (milliseconds since the epoch). */
  readonly now: number;
}

/**
 * Whether `r` is under a live lease of its route's namespace. An mx recipient not yet due is
 * not part of its domain's outbound lease (the lease offers due ones only): it waits.
 */
export function isLeased(leased: LeasedDomains, r: RecipientRow): boolean {
  if (r.route === "atrn") return leased.atrn.has(r.domain);
  return leased.mx.has(r.domain) && (r.nextAttemptAt ?? 0) <= leased.now;
}

/** Checks a `SELECT id, received_at, mail_from, size, params, submitter FROM messages` row. */
export function readMessageRow(row: unknown): MessageRow | undefined {
  if (!isRecord(row)) return undefined;
  const { id, received_at: receivedAt, mail_from: mailFrom, size, params, submitter } = row;
  if (typeof id !== "string" || typeof mailFrom !== "string" || typeof params !== "string") {
    return undefined;
  }
  if (!isCount(receivedAt) || !isCount(size)) return undefined;
  if (submitter !== null && submitter !== undefined && typeof submitter !== "string") {
    return undefined;
  }
  const parsed = readParams(params);
  if (parsed === undefined) return undefined;
  const checked = { id, receivedAt, mailFrom, size, params: parsed };
  return typeof submitter === "string" ? { ...checked, submitter } : checked;
}

/**
 * Checks a `SELECT id, message_id, address, domain, status, attempts, last_reply, notify,
 * orcpt, expired_at, route, next_attempt_at` row.
 */
export function readRecipientRow(row: unknown): RecipientRow | undefined {
  if (!isRecord(row)) return undefined;
  const { id, message_id: messageId, address, domain, status, attempts } = row;
  if (!isCount(id) || !isCount(attempts)) return undefined;
  if (typeof messageId !== "string" || typeof address !== "string") return undefined;
  if (typeof domain !== "string") return undefined;
  if (status !== "queued" && status !== "failed") return undefined;
  const lastReply = optionalText(row.last_reply);
  const notify = optionalText(row.notify);
  const orcpt = optionalText(row.orcpt);
  if (lastReply === null || notify === null || orcpt === null) return undefined;
  const expiredAt = row.expired_at === null || row.expired_at === undefined
    ? undefined
    : row.expired_at;
  if (expiredAt !== undefined && !isCount(expiredAt)) return undefined;
  const route = row.route;
  if (route !== "atrn" && route !== "mx") return undefined;
  const nextAttemptAt = row.next_attempt_at === null || row.next_attempt_at === undefined
    ? undefined
    : row.next_attempt_at;
  if (nextAttemptAt !== undefined && !isCount(nextAttemptAt)) return undefined;
  return {
    id,
    messageId,
    address,
    domain,
    stored: status,
    attempts,
    lastReply,
    notify,
    orcpt,
    expiredAt,
    route,
    nextAttemptAt,
  };
}

/** The operator-facing recipient (types.ts), with `status` as computed by the caller. */
export function toQueuedRecipient(r: RecipientRow, status: RecipientStatus): QueuedRecipient {
  return {
    id: r.id,
    address: r.address,
    domain: r.domain,
    status,
    attempts: r.attempts,
    ...(r.lastReply !== undefined ? { lastReply: r.lastReply } : {}),
    ...(r.notify !== undefined ? { notify: r.notify } : {}),
    ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
    route: r.route,
    ...(r.route === "mx" && r.nextAttemptAt !== undefined
      ? { nextAttemptAt: r.nextAttemptAt }
      : {}),
  };
}

/**
 * The operator's view of a message: a recipient is `expired` once expiry marked it, `failed`
 * when stored so, `delivering` while its domain is under a live lease of its route's
 * namespace, else `queued`.
 */
export function toQueuedMessage(
  message: MessageRow,
  recipients: readonly RecipientRow[],
  leased: LeasedDomains,
): QueuedMessage {
  return {
    ...message,
    recipients: recipients.map((r) => {
      const status: RecipientStatus = r.expiredAt !== undefined
        ? "expired"
        : r.stored === "failed"
        ? "failed"
        : isLeased(leased, r)
        ? "delivering"
        : "queued";
      return toQueuedRecipient(r, status);
    }),
  };
}

/** Checks a chunk row's bytes. */
export function readChunkBytes(row: unknown): Uint8Array | undefined {
  if (!isRecord(row)) return undefined;
  const bytes = row.bytes;
  return bytes instanceof Uint8Array ? bytes : undefined;
}

/**
 * The bytes of chunk row `raw`, which must be the one after chunk `afterSeq`: a body with a hole
 * (a missing or unreadable chunk) cannot be sent byte-exact, so the read stops rather than send
 * it damaged. For both stores' readers.
 */
export function nextChunkBytes(messageId: string, raw: unknown, afterSeq: number): Uint8Array {
  const bytes = readChunkBytes(raw);
  if (bytes === undefined || !isRecord(raw) || raw.seq !== afterSeq + 1) {
    throw new Error(
      `Cannot read body of message "${messageId}": chunk ${afterSeq + 1} is ` +
        (bytes === undefined ? "unreadable" : "missing"),
    );
  }
  return bytes;
}

/**
 * Throws unless a read whose last page came back short ended at the last of the `count` chunks
 * counted before it: otherwise its tail went while it was read (the message deleted meanwhile),
 * and ending there would pass a cut body off as whole.
 */
export function checkChunksEnd(messageId: string, afterSeq: number, count: number): void {
  if (afterSeq === count - 1) return;
  throw new Error(
    `Cannot read body of message "${messageId}": chunk ${afterSeq + 1} of ${count} ` +
      "is gone (deleted while it was read)",
  );
}

/**
 * The body kept in a message's row (`SELECT body FROM messages`): undefined when the row holds
 * none (NULL, or no such message: the body is in `message_chunks`). Throws when the column
 * holds something else than bytes: reading the chunks instead would send an empty body.
 */
export function readInlineBody(row: unknown): Uint8Array | undefined {
  if (!isRecord(row)) return undefined;
  const body = row.body;
  if (body === null || body === undefined) return undefined;
  if (body instanceof Uint8Array) return body;
  throw new Error("Cannot read body: the message row's body is not bytes");
}

/** Serializes params for the `params` column. */
export function writeParams(params: MessageParams): string {
  return JSON.stringify(params);
}

function readParams(text: string): MessageParams | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(value)) return undefined;
  const { body, smtputf8, ret, envid } = value;
  if (body !== undefined && body !== "7BIT" && body !== "8BITMIME" && body !== "BINARYMIME") {
    return undefined;
  }
  if (smtputf8 !== undefined && typeof smtputf8 !== "boolean") return undefined;
  if (ret !== undefined && ret !== "FULL" && ret !== "HDRS") return undefined;
  if (envid !== undefined && typeof envid !== "string") return undefined;
  return {
    ...(body !== undefined ? { body } : {}),
    ...(smtputf8 !== undefined ? { smtputf8 } : {}),
    ...(ret !== undefined ? { ret } : {}),
    ...(envid !== undefined ? { envid } : {}),
  };
}

/** A counter column of `row` (a count or a sum): 0 when absent, NULL, negative or not a count. */
export function countField(row: unknown, key: string): number {
  if (!isRecord(row)) return 0;
  const v = row[key];
  return isCount(v) ? v : 0;
}

/** undefined for SQL NULL, the string for text, null for anything else (a bad row). */
function optionalText(v: unknown): string | undefined | null {
  if (v === null || v === undefined) return undefined;
  return typeof v === "string" ? v : null;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** How a lease was taken, the same for both backends' leases. */
export interface LeaseOptions {
  readonly owner: string;
  readonly leaseSeconds: number;
  /** Default "atrn". */
  readonly route?: Route;
  /** Route "mx": the claim's time; recipients due by then are the lease's. */
  readonly dueBy?: number;
}
