/**
 * Paged reads of the queue tables: messages oldest first (keyset pages, never the whole
 * queue at once), their recipients, and body chunks in order. Read-only; rows that fail
 * validation are logged and skipped.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Logger } from "../observe/log.ts";
import {
  type MessageRow,
  readChunkBytes,
  readMessageRow,
  readRecipientRow,
  type RecipientRow,
} from "./_rows.ts";

/** Messages fetched per page. */
export const MESSAGE_PAGE_SIZE = 100;
/** Body chunks fetched per query (64 KiB each: 1 MiB in memory at most). */
const CHUNK_PAGE_SIZE = 16;

/** Which recipients a read is about. */
export interface RecipientFilter {
  /** Only recipients in these domains; undefined: all domains. */
  readonly domains: readonly string[] | undefined;
  /** Only `queued` recipients (a lease's view); otherwise `queued` and `failed`. */
  readonly queuedOnly: boolean;
}

const MESSAGE_COLUMNS = "m.id, m.received_at, m.mail_from, m.size, m.params";
const RECIPIENT_COLUMNS =
  "id, message_id, address, domain, status, attempts, last_reply, notify, orcpt, expired_at";

/** The read side of the SQLite queue. */
export class QueueReader {
  readonly #log: Logger;
  readonly #pageAll: StatementSync;
  readonly #pageInDomains: StatementSync;
  readonly #pageQueuedInDomains: StatementSync;
  readonly #recipientsAll: StatementSync;
  readonly #recipientsInDomains: StatementSync;
  readonly #recipientsQueuedInDomains: StatementSync;
  readonly #chunks: StatementSync;
  readonly #oneMessage: StatementSync;

  constructor(db: DatabaseSync, log: Logger) {
    this.#log = log;
    // Row values `(a, b) > (?, ?)`: keyset paging on (received_at, id), stable under deletes.
    const after = "(m.received_at, m.id) > (?, ?)";
    const order = "ORDER BY m.received_at, m.id LIMIT ?";
    const inDomains = "r.domain IN (SELECT value FROM json_each(?))";
    this.#pageAll = db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE ${after} ${order}`);
    this.#pageInDomains = db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE ${after} AND EXISTS (` +
        `SELECT 1 FROM recipients r WHERE r.message_id = m.id AND ${inDomains}) ${order}`,
    );
    this.#pageQueuedInDomains = db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE ${after} AND EXISTS (` +
        `SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.status = 'queued' ` +
        `AND ${inDomains}) ${order}`,
    );
    const ofMessages = "message_id IN (SELECT value FROM json_each(?))";
    this.#recipientsAll = db.prepare(
      `SELECT ${RECIPIENT_COLUMNS} FROM recipients WHERE ${ofMessages} ORDER BY id`,
    );
    this.#recipientsInDomains = db.prepare(
      `SELECT ${RECIPIENT_COLUMNS} FROM recipients r WHERE ${ofMessages} AND ${inDomains} ` +
        "ORDER BY id",
    );
    this.#recipientsQueuedInDomains = db.prepare(
      `SELECT ${RECIPIENT_COLUMNS} FROM recipients r WHERE ${ofMessages} AND ${inDomains} ` +
        "AND status = 'queued' ORDER BY id",
    );
    this.#chunks = db.prepare(
      "SELECT seq, bytes FROM message_chunks WHERE message_id = ? AND seq > ? ORDER BY seq LIMIT ?",
    );
    this.#oneMessage = db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?`);
  }

  /** Messages matching `filter`, oldest first, each with its matching recipients; paged. */
  *messages(
    filter: RecipientFilter,
  ): Generator<{ message: MessageRow; recipients: RecipientRow[] }> {
    let afterTime = -1;
    let afterId = "";
    for (;;) {
      const rows = this.#page(filter, afterTime, afterId);
      if (rows.length === 0) return;
      const messages: MessageRow[] = [];
      for (const raw of rows) {
        const message = readMessageRow(raw);
        if (message === undefined) {
          this.#log.warn("queue_row_unreadable", { table: "messages", id: rowId(raw) });
        } else {
          messages.push(message);
        }
      }
      const last = rows[rows.length - 1];
      const lastId = rowId(last);
      const lastTime = isRecordLike(last) ? last.received_at : undefined;
      // A row too broken to page past ends the listing instead of looping on it forever.
      if (typeof lastTime !== "number" || lastId === undefined) return;
      afterTime = lastTime;
      afterId = lastId;
      const byMessage = this.#recipientsOf(messages.map((m) => m.id), filter);
      for (const message of messages) {
        const recipients = byMessage.get(message.id) ?? [];
        if (recipients.length > 0) yield { message, recipients };
      }
      if (rows.length < MESSAGE_PAGE_SIZE) return;
    }
  }

  /** One message with its recipients (all domains and statuses), or undefined. */
  message(id: string): { message: MessageRow; recipients: RecipientRow[] } | undefined {
    const raw: unknown = this.#oneMessage.get(id);
    if (raw === undefined) return undefined;
    const message = readMessageRow(raw);
    if (message === undefined) {
      this.#log.warn("queue_row_unreadable", { table: "messages", id });
      return undefined;
    }
    const recipients = this.#recipientsOf([id], { domains: undefined, queuedOnly: false })
      .get(id) ?? [];
    return { message, recipients };
  }

  /** The stored body chunks of `messageId`, in order, a page of rows at a time. */
  *body(messageId: string): Generator<Uint8Array> {
    let afterSeq = -1;
    for (;;) {
      const rows = this.#chunks.all(messageId, afterSeq, CHUNK_PAGE_SIZE);
      for (const raw of rows) {
        const bytes = readChunkBytes(raw);
        const seq: unknown = raw.seq;
        if (bytes === undefined || typeof seq !== "number") {
          // A body with a hole cannot be sent byte-exact: stop rather than send it damaged.
          throw new Error(`Cannot read body of message "${messageId}": chunk row is unreadable`);
        }
        afterSeq = seq;
        yield bytes;
      }
      if (rows.length < CHUNK_PAGE_SIZE) return;
    }
  }

  #page(filter: RecipientFilter, afterTime: number, afterId: string): unknown[] {
    if (filter.domains === undefined) {
      return this.#pageAll.all(afterTime, afterId, MESSAGE_PAGE_SIZE);
    }
    const statement = filter.queuedOnly ? this.#pageQueuedInDomains : this.#pageInDomains;
    return statement.all(afterTime, afterId, JSON.stringify(filter.domains), MESSAGE_PAGE_SIZE);
  }

  #recipientsOf(ids: readonly string[], filter: RecipientFilter): Map<string, RecipientRow[]> {
    const out = new Map<string, RecipientRow[]>();
    if (ids.length === 0) return out;
    const idsJson = JSON.stringify(ids);
    let rows: unknown[];
    if (filter.domains === undefined) {
      rows = this.#recipientsAll.all(idsJson);
    } else {
      const statement = filter.queuedOnly
        ? this.#recipientsQueuedInDomains
        : this.#recipientsInDomains;
      rows = statement.all(idsJson, JSON.stringify(filter.domains));
    }
    for (const raw of rows) {
      const r = readRecipientRow(raw);
      if (r === undefined) {
        this.#log.warn("queue_row_unreadable", { table: "recipients", id: rowId(raw) });
        continue;
      }
      if (filter.domains === undefined && filter.queuedOnly && r.stored !== "queued") continue;
      const list = out.get(r.messageId);
      if (list === undefined) out.set(r.messageId, [r]);
      else list.push(r);
    }
    return out;
  }
}

function isRecordLike(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

function rowId(row: unknown): string | undefined {
  if (!isRecordLike(row)) return undefined;
  const id = row.id;
  return typeof id === "string" || typeof id === "number" ? String(id) : undefined;
}
