/**
 * Paged reads of the queue tables: messages oldest first (keyset pages, never the whole
 * queue at once), their recipients, and body chunks in order. Read-only; rows that fail
 * validation are logged and skipped.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Logger } from "../observe/log.ts";
import {
  type MessageRow,
  readInlineBody,
  readMessageRow,
  readRecipientRow,
  type RecipientRow,
} from "./_rows.ts";
import { mergePage } from "./_merge_page.ts";
import type { Route } from "./types.ts";
import { BODY_GARBAGE } from "./_body_garbage.ts";
import type { BodyFiles } from "./_body_files.ts";
import { bodyPage, CHUNK_PAGE_SIZE } from "./_body_pages.ts";

/** Messages fetched per page. */
export const MESSAGE_PAGE_SIZE = 100;

/**
 * One page of a domain's message ids with recipients in one status (domain, status, after id,
 * limit): a range search in the (domain, status, message_id) index.
 */
export const DOMAIN_PAGE_SQL =
  "SELECT DISTINCT message_id FROM recipients INDEXED BY recipients_domain_status_message " +
  "WHERE domain = ? AND status = ? AND message_id > ? ORDER BY message_id LIMIT ?";

/** Which recipients a read is about. */
export interface RecipientFilter {
  /** Only recipients in these domains; undefined: all domains. */
  readonly domains: readonly string[] | undefined;
  /** Only `queued` recipients (a lease's view); otherwise `queued` and `failed`. */
  readonly queuedOnly: boolean;
  /** Only recipients on this route (a lease's view); undefined: both. */
  readonly route?: Route;
  /** Only recipients due by then (next attempt at or before; an mx lease's view). */
  readonly dueBy?: number;
}

const MESSAGE_COLUMNS = "m.id, m.received_at, m.mail_from, m.size, m.params, m.submitter";
const RECIPIENT_COLUMNS =
  "id, message_id, address, domain, status, attempts, last_reply, notify, orcpt, expired_at, " +
  "route, next_attempt_at";

/** Messages never handed out (refused to their sender, rows left: _refused.ts). */
export interface HiddenMessages {
  has(id: string): boolean;
}

/** The read side of the SQLite queue. */
export class QueueReader {
  readonly #log: Logger;
  readonly #files: BodyFiles | undefined;
  readonly #hidden: HiddenMessages | undefined;
  readonly #pageAll: StatementSync;
  readonly #idsInDomain: StatementSync;
  readonly #messagesById: StatementSync;
  readonly #recipientsAll: StatementSync;
  readonly #recipientsInDomains: StatementSync;
  readonly #recipientsQueuedInDomains: StatementSync;
  readonly #chunks: StatementSync;
  readonly #chunksWhole: StatementSync;
  readonly #inlineBody: StatementSync;
  readonly #oneMessage: StatementSync;

  constructor(db: DatabaseSync, log: Logger, files?: BodyFiles, hidden?: HiddenMessages) {
    this.#log = log;
    this.#files = files;
    this.#hidden = hidden;
    // Row values `(a, b) > (?, ?)`: keyset paging on (received_at, id), stable under deletes.
    const after = "(m.received_at, m.id) > (?, ?)";
    const order = "ORDER BY m.received_at, m.id LIMIT ?";
    const inDomains = "r.domain IN (SELECT value FROM json_each(?))";
    this.#pageAll = db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE ${after} ${order}`);
    // A domain's messages come from the (domain, status, message_id) index, ids ascending
    // (ids sort by arrival time): never a walk over other domains' mail (issue 13).
    this.#idsInDomain = db.prepare(DOMAIN_PAGE_SQL);
    this.#messagesById = db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id IN (SELECT value FROM json_each(?)) ` +
        "ORDER BY m.id",
    );
    const ofMessages = "message_id IN (SELECT value FROM json_each(?))";
    this.#recipientsAll = db.prepare(
      `SELECT ${RECIPIENT_COLUMNS} FROM recipients WHERE ${ofMessages} ORDER BY id`,
    );
    this.#recipientsInDomains = db.prepare(
      `SELECT ${RECIPIENT_COLUMNS} FROM recipients r WHERE ${ofMessages} AND ${inDomains} ` +
        "ORDER BY id",
    );
    // A lease's view: queued, on its route, due (an ATRN lease passes no time: NULL).
    this.#recipientsQueuedInDomains = db.prepare(
      `SELECT ${RECIPIENT_COLUMNS} FROM recipients r WHERE ${ofMessages} AND ${inDomains} ` +
        "AND status = 'queued' AND (?3 IS NULL OR route = ?3) " +
        "AND (?4 IS NULL OR next_attempt_at <= ?4) ORDER BY id",
    );
    // The page size is written into the SQL, not bound: with `LIMIT ?` the same query took
    // about twice the CPU (a 4 KB body, one row; measured for #13).
    this.#chunks = db.prepare(
      "SELECT seq, bytes FROM message_chunks WHERE message_id = ? AND seq > ? ORDER BY seq " +
        `LIMIT ${CHUNK_PAGE_SIZE}`,
    );
    // length() of a blob reads its record header only, not the bytes (overflow pages).
    this.#chunksWhole = db.prepare(
      "SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi, sum(length(bytes)) AS total " +
        "FROM message_chunks WHERE message_id = ?",
    );
    this.#inlineBody = db.prepare("SELECT body, body_file, size FROM messages WHERE id = ?");
    this.#oneMessage = db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?`);
  }

  /**
   * Messages matching `filter`, oldest first, each with its matching recipients; paged. With
   * domains, "oldest" is id order (ids sort by arrival) and the walk uses only their rows.
   */
  *messages(
    filter: RecipientFilter,
  ): Generator<{ message: MessageRow; recipients: RecipientRow[] }> {
    if (filter.domains !== undefined) {
      yield* this.#messagesInDomains(filter.domains, filter.queuedOnly, filter);
      return;
    }
    let afterTime = -1;
    let afterId = "";
    for (;;) {
      const rows = this.#pageAll.all(afterTime, afterId, MESSAGE_PAGE_SIZE);
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
        if (recipients.length > 0 && this.#hidden?.has(message.id) !== true) {
          yield { message, recipients };
        }
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

  /**
   * The body of `messageId`: in its own file (schema step 8), in its row (step 7), or else its
   * stored chunks, in order, a page of rows at a time. A body that is not the message's size in
   * bytes (chunks with a gap or a short tail, a row's body shorter or longer, a file that ends
   * early) throws before any byte is yielded: a damaged body is never sent, shown or returned in
   * a report as if it were the message.
   */
  *body(messageId: string): Generator<Uint8Array> {
    const row = this.#inlineBody.get(messageId);
    // Deleted meanwhile (`queue delete`): its chunks, if any are left, are not the message.
    if (row === undefined) {
      throw new Error(`Cannot read body of message "${messageId}": no such message`);
    }
    // Offered before its sender was refused: not sent now.
    if (this.#hidden?.has(messageId) === true) {
      throw new Error(
        `Cannot read body of message "${messageId}": its sender was refused (its rows stay ` +
          "until they can be removed)",
      );
    }
    if (row.body_file !== null) {
      // Schema step 8: in its own file (src/queue/_body_files.ts).
      const { body_file: name, size } = row;
      if (this.#files === undefined || typeof name !== "string" || typeof size !== "number") {
        throw new Error(`Cannot read body of message "${messageId}": it is in a file`);
      }
      for (const bytes of this.#files.read(messageId, name, size)) {
        BODY_GARBAGE.read(bytes.length);
        yield bytes;
      }
      return;
    }
    const inline = readInlineBody(row);
    if (inline !== undefined) {
      // Its row's size says how long it is: a body shorter or longer is not the message.
      if (inline.length !== row.size) {
        throw new Error(
          `Cannot read body of message "${messageId}": its row holds ${inline.length} of its ` +
            `${row.size} bytes: stored damaged`,
        );
      }
      BODY_GARBAGE.read(inline.length);
      if (inline.length > 0) yield inline;
      return;
    }
    const count = this.#checkWhole(messageId, row.size);
    let afterSeq: number | undefined = -1;
    while (afterSeq !== undefined) {
      const rows: readonly unknown[] = this.#chunks.all(messageId, afterSeq);
      afterSeq = yield* bodyPage(messageId, rows, { afterSeq, count });
    }
  }

  /**
   * Throws unless the chunk rows of `messageId` are seq 0..n-1 and `size` bytes in all; returns
   * n.
   */
  #checkWhole(messageId: string, size: unknown): number {
    const { n, lo, hi, total } = this.#chunksWhole.get(messageId) ?? {};
    const bytes = total ?? 0;
    if (n === 0 && size === 0) return 0;
    if (lo !== 0 || hi !== Number(n) - 1 || bytes !== size) {
      throw new Error(
        `Cannot read body of message "${messageId}": its chunks hold ${bytes} of its ` +
          `${size} bytes (${n} chunks, seq ${lo ?? "-"} to ${hi ?? "-"}): stored incomplete`,
      );
    }
    return Number(n);
  }

  *#messagesInDomains(
    domains: readonly string[],
    queuedOnly: boolean,
    opts: { readonly route?: Route; readonly dueBy?: number },
  ): Generator<{ message: MessageRow; recipients: RecipientRow[] }> {
    const statuses = queuedOnly ? ["queued"] : ["queued", "failed"];
    const filter = { ...opts, domains, queuedOnly };
    let afterId = "";
    for (;;) {
      const streams: string[][] = [];
      for (const domain of new Set(domains)) {
        for (const status of statuses) {
          const ids: string[] = [];
          for (const row of this.#idsInDomain.all(domain, status, afterId, MESSAGE_PAGE_SIZE)) {
            const id: unknown = row.message_id;
            if (typeof id === "string") ids.push(id);
          }
          streams.push(ids);
        }
      }
      const page = mergePage(streams, MESSAGE_PAGE_SIZE);
      const last = page.ids[page.ids.length - 1];
      if (last === undefined) return;
      afterId = last;
      const messages: MessageRow[] = [];
      for (const raw of this.#messagesById.all(JSON.stringify(page.ids))) {
        const message = readMessageRow(raw);
        if (message === undefined) {
          this.#log.warn("queue_row_unreadable", { table: "messages", id: rowId(raw) });
        } else {
          messages.push(message);
        }
      }
      const byMessage = this.#recipientsOf(messages.map((m) => m.id), filter);
      for (const message of messages) {
        const recipients = byMessage.get(message.id) ?? [];
        if (recipients.length > 0 && this.#hidden?.has(message.id) !== true) {
          yield { message, recipients };
        }
      }
      if (page.isLast) return;
    }
  }

  #recipientsOf(ids: readonly string[], filter: RecipientFilter): Map<string, RecipientRow[]> {
    const out = new Map<string, RecipientRow[]>();
    if (ids.length === 0) return out;
    const idsJson = JSON.stringify(ids);
    let rows: unknown[];
    if (filter.domains === undefined) {
      rows = this.#recipientsAll.all(idsJson);
    } else if (filter.queuedOnly) {
      rows = this.#recipientsQueuedInDomains.all(
        idsJson,
        JSON.stringify(filter.domains),
        filter.route ?? null,
        filter.dueBy ?? null,
      );
    } else {
      rows = this.#recipientsInDomains.all(idsJson, JSON.stringify(filter.domains));
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
