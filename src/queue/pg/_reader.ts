/**
 * Reads of the PostgreSQL queue: a domain's messages from the (domain, status, message_id)
 * index in id order, merged across domains and statuses a page at a time (the same walk as
 * the SQLite reader), all messages by arrival, one message, and body chunks in order. Rows are
 * checked with the SQLite validators (bigints are cast to float8 in SQL: all well below 2^53).
 */
import type { Logger } from "../../observe/log.ts";
import { mergePage } from "../_merge_page.ts";
import { type MessageRow, readMessageRow, readRecipientRow, type RecipientRow } from "../_rows.ts";
import type { Route } from "../types.ts";
import type { Sql } from "./connect.ts";
import { bodyPage, CHUNK_PAGE_SIZE } from "../_body_pages.ts";
import { PG_CALL_DEADLINE_MS, within } from "./_deadline.ts";

/** Messages fetched per page. */
export const PG_MESSAGE_PAGE_SIZE = 100;

/** A message with the recipients a read is about. */
export interface FoundMessage {
  readonly message: MessageRow;
  readonly recipients: RecipientRow[];
}

/** The read side. */
export class PgReader {
  readonly #sql: Sql;
  readonly #log: Logger;
  /** Each query's deadline (_deadline.ts): a drain must not wait on a silent connection. */
  readonly #deadlineMs: number;

  constructor(sql: Sql, log: Logger, deadlineMs = PG_CALL_DEADLINE_MS) {
    this.#sql = sql;
    this.#log = log;
    this.#deadlineMs = deadlineMs;
  }

  /** One query of this reader, under its deadline. */
  #query(q: PromiseLike<Record<string, unknown>[]>, what: string) {
    return within(q, this.#deadlineMs, what);
  }

  /**
   * Messages with recipients in `domains` (queued only, or queued and failed), id order; a
   * lease's view also names its route and, for the mx route, the time recipients are due by.
   */
  async *inDomains(
    domains: readonly string[],
    queuedOnly: boolean,
    view: { readonly route?: Route; readonly dueBy?: number } = {},
  ): AsyncGenerator<FoundMessage> {
    const statuses = queuedOnly ? ["queued"] : ["queued", "failed"];
    const unique = [...new Set(domains)];
    let after = "";
    for (let guard = 0; guard < 10_000_000; guard++) {
      const streams = await Promise.all(unique.flatMap((domain) =>
        statuses.map(async (status) => {
          const rows = await this.#query(
            this.#sql`SELECT DISTINCT message_id FROM recipients
              WHERE domain = ${domain} AND status = ${status} AND message_id > ${after}
              ORDER BY message_id LIMIT ${PG_MESSAGE_PAGE_SIZE}`,
            "queue read",
          );
          return rows.map((r) => String(r.message_id));
        })
      ));
      const page = mergePage(streams, PG_MESSAGE_PAGE_SIZE);
      const last = page.ids[page.ids.length - 1];
      if (last === undefined) return;
      after = last;
      const messages = await this.#messages(page.ids);
      const byMessage = await this.#recipientsOf(page.ids, unique, queuedOnly, view);
      for (const message of messages) {
        const recipients = byMessage.get(message.id) ?? [];
        if (recipients.length > 0) yield { message, recipients };
      }
      if (page.isLast) return;
    }
  }

  /** Every message, oldest first, with all its recipients (keyset pages). */
  async *all(): AsyncGenerator<FoundMessage> {
    let afterTime = -1;
    let afterId = "";
    for (let guard = 0; guard < 10_000_000; guard++) {
      const rows = await this.#query(
        this.#sql`SELECT id, received_at::float8 AS received_at, mail_from,
            size::float8 AS size, params, submitter FROM messages
          WHERE (received_at, id) > (${afterTime}, ${afterId})
          ORDER BY received_at, id LIMIT ${PG_MESSAGE_PAGE_SIZE}`,
        "queue read",
      );
      const messages = this.#check(rows);
      const last = rows[rows.length - 1];
      if (last === undefined) return;
      afterTime = Number(last.received_at);
      afterId = String(last.id);
      const byMessage = await this.#recipientsOf(messages.map((m) => m.id), undefined, false);
      for (const message of messages) {
        const recipients = byMessage.get(message.id) ?? [];
        if (recipients.length > 0) yield { message, recipients };
      }
      if (rows.length < PG_MESSAGE_PAGE_SIZE) return;
    }
  }

  /** One message with all its recipients, or undefined. */
  async one(id: string): Promise<FoundMessage | undefined> {
    const [message] = await this.#messages([id]);
    if (message === undefined) return undefined;
    const recipients = (await this.#recipientsOf([id], undefined, false)).get(id) ?? [];
    return { message, recipients };
  }

  /**
   * The stored chunks of `messageId`, in order, a page of rows at a time. The first page comes
   * with what the chunks add up to (octet_length reads no TOASTed value): unless they are seq
   * 0..n-1 holding the message's size in bytes, or the message is gone, this throws before any
   * byte is yielded, as the SQLite reader does; a gap found later throws too. A damaged body is
   * never sent, shown or quoted in a report as if it were the message.
   */
  async *body(messageId: string): AsyncGenerator<Uint8Array> {
    let afterSeq: number | undefined = -1;
    /** Chunks the first page's check counted: the read must end at the last of them. */
    let count = 0;
    for (let guard = 0; guard < 10_000_000 && afterSeq !== undefined; guard++) {
      let rows: Record<string, unknown>[];
      if (afterSeq < 0) ({ rows, count } = await this.#firstPage(messageId));
      else {
        rows = await this.#query(
          this.#sql`SELECT seq, bytes FROM message_chunks
              WHERE message_id = ${messageId} AND seq > ${afterSeq} ORDER BY seq
              LIMIT ${CHUNK_PAGE_SIZE}`,
          "body read",
        );
      }
      afterSeq = yield* bodyPage(messageId, rows, { afterSeq, count });
    }
  }

  /** The first page of chunks and how many there are, after checking them whole (see `body`). */
  async #firstPage(
    messageId: string,
  ): Promise<{ rows: Record<string, unknown>[]; count: number }> {
    const rows = await this.#query(
      this.#sql`SELECT w.size, w.n, w.lo, w.hi, w.total, c.seq, c.bytes
        FROM (SELECT (SELECT size::float8 FROM messages WHERE id = ${messageId}) AS size,
            count(*)::float8 AS n, min(seq) AS lo, max(seq) AS hi,
            coalesce(sum(octet_length(bytes)), 0)::float8 AS total
          FROM message_chunks WHERE message_id = ${messageId}) w
        LEFT JOIN LATERAL (SELECT seq, bytes FROM message_chunks
          WHERE message_id = ${messageId} ORDER BY seq LIMIT ${CHUNK_PAGE_SIZE}) c ON true
        ORDER BY c.seq`,
      "body read",
    );
    const { size, n, lo, hi, total } = rows[0] ?? {};
    const what = `Cannot read body of message "${messageId}"`;
    if (size === null || size === undefined) throw new Error(`${what}: no such message`);
    if (n === 0 && size === 0) return { rows: [], count: 0 };
    if (lo !== 0 || hi !== Number(n) - 1 || total !== size) {
      throw new Error(
        `${what}: its chunks hold ${total} of its ${size} bytes (${n} chunks, seq ` +
          `${lo ?? "-"} to ${hi ?? "-"}): stored incomplete`,
      );
    }
    return { rows, count: Number(n) };
  }

  async #messages(ids: readonly string[]): Promise<MessageRow[]> {
    if (ids.length === 0) return [];
    const rows = await this.#query(
      this.#sql`SELECT id, received_at::float8 AS received_at, mail_from,
          size::float8 AS size, params, submitter FROM messages
        WHERE id = ANY(${ids as string[]}::text[])
        ORDER BY id`,
      "queue read",
    );
    return this.#check(rows);
  }

  #check(rows: readonly Record<string, unknown>[]): MessageRow[] {
    const out: MessageRow[] = [];
    for (const raw of rows) {
      const message = readMessageRow(raw);
      if (message === undefined) {
        this.#log.warn("queue_row_unreadable", { table: "messages", id: String(raw.id) });
      } else {
        out.push(message);
      }
    }
    return out;
  }

  async #recipientsOf(
    ids: readonly string[],
    domains: readonly string[] | undefined,
    queuedOnly: boolean,
    view: { readonly route?: Route; readonly dueBy?: number } = {},
  ): Promise<Map<string, RecipientRow[]>> {
    const out = new Map<string, RecipientRow[]>();
    if (ids.length === 0) return out;
    const rows = await this.#query(
      this.#sql`SELECT id::float8 AS id, message_id, address, domain, status,
        attempts, last_reply, notify, orcpt, expired_at::float8 AS expired_at, route,
        next_attempt_at::float8 AS next_attempt_at
      FROM recipients WHERE message_id = ANY(${ids as string[]}::text[])
        AND (${domains === undefined} OR domain = ANY(${(domains ?? []) as string[]}::text[]))
        AND (${!queuedOnly} OR status = 'queued')
        AND (${view.route === undefined} OR route = ${view.route ?? "atrn"})
        AND (${view.dueBy === undefined} OR next_attempt_at <= ${view.dueBy ?? 0})
      ORDER BY id`,
      "queue read",
    );
    for (const raw of rows) {
      const r = readRecipientRow(raw);
      if (r === undefined) {
        this.#log.warn("queue_row_unreadable", { table: "recipients", id: String(raw.id) });
        continue;
      }
      const list = out.get(r.messageId);
      if (list === undefined) out.set(r.messageId, [r]);
      else list.push(r);
    }
    return out;
  }
}
