/**
 * Streams one message body into `message_chunks` as bytes arrive (never the whole message in
 * memory). Full chunks are inserted at once on the chunk pool (asynchronous commit); the last
 * chunk, the message row and its recipients go into one group transaction whose synchronous
 * COMMIT also flushes every earlier chunk (WAL is written in order). Only then does commit()
 * resolve, so the 250 after DATA follows durability.
 */
import type { Logger } from "../../observe/log.ts";
import { ChunkBuffer } from "../_chunk_buffer.ts";
import { writeParams } from "../_rows.ts";
import type { MessageWriter, NewMessage } from "../types.ts";
import type { Sql, Tx } from "./connect.ts";
import type { PgGroupCommit } from "./_group.ts";
import { within } from "./_deadline.ts";
import { reportDone } from "./_report_pending.ts";

type WriterState = "writing" | "committing" | "committed" | "aborted";

/** What a writer needs from its store. */
export interface PgWriterDeps {
  readonly chunkSql: Sql;
  readonly group: PgGroupCommit;
  readonly log: Logger;
  readonly chunkBytes: number;
  readonly receivedAt: number;
  /** How long one chunk's insert may wait for PostgreSQL (_deadline.ts). */
  readonly deadlineMs: number;
}

/** A `MessageWriter` on PostgreSQL. */
export class PgMessageWriter implements MessageWriter {
  readonly id: string;
  readonly #message: NewMessage;
  readonly #deps: PgWriterDeps;
  readonly #buffer: ChunkBuffer;
  #seq = 0;
  #size = 0;
  #state: WriterState = "writing";

  constructor(id: string, message: NewMessage, deps: PgWriterDeps) {
    this.id = id;
    this.#message = message;
    this.#deps = deps;
    this.#buffer = new ChunkBuffer(deps.chunkBytes);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#state !== "writing") throw new Error(`MessageWriter.write() after ${this.#state}`);
    this.#size += chunk.length;
    for (const full of this.#buffer.add(chunk)) {
      const bytes = full.slice(); // a copy: the insert may still hold it when the buffer refills
      const seq = this.#seq++;
      // Within the deadline: the sender's DATA is answered 451 rather than nothing.
      await within(
        this.#deps.chunkSql`INSERT INTO message_chunks (message_id, seq, bytes, created_at)
          VALUES (${this.id}, ${seq}, ${bytes}, ${this.#deps.receivedAt})`,
        this.#deps.deadlineMs,
        "body chunk",
      );
    }
  }

  async commit(): Promise<void> {
    if (this.#state !== "writing") throw new Error(`MessageWriter.commit() after ${this.#state}`);
    this.#state = "committing";
    const last = this.#buffer.isEmpty ? undefined : this.#buffer.take().slice();
    const lastSeq = this.#seq;
    if (last !== undefined) this.#seq++;
    const m = this.#message;
    try {
      await this.#deps.group.run(async (tx: Tx) => {
        if (last !== undefined) {
          await tx`INSERT INTO message_chunks (message_id, seq, bytes, created_at)
            VALUES (${this.id}, ${lastSeq}, ${last}, ${this.#deps.receivedAt})`;
        }
        await tx`INSERT INTO messages (id, received_at, mail_from, size, params, submitter)
          VALUES (${this.id}, ${this.#deps.receivedAt}, ${m.mailFrom}, ${this.#size},
            ${writeParams(m.params)}, ${m.submitter ?? null})`;
        // An mx-route recipient is due at once: its first attempt is at the received time.
        await tx`INSERT INTO recipients (message_id, address, domain, notify, orcpt, route,
            next_attempt_at)
          SELECT ${this.id}, * FROM unnest(
            ${m.recipients.map((r) => r.address)}::text[],
            ${m.recipients.map((r) => r.domain)}::text[],
            ${m.recipients.map((r) => r.notify ?? null)}::text[],
            ${m.recipients.map((r) => r.orcpt ?? null)}::text[],
            ${m.recipients.map((r) => r.route ?? "atrn")}::text[],
            ${m.recipients.map((r) => r.route === "mx" ? this.#deps.receivedAt : null)}::bigint[])`;
        // A failure report: the pending mark of its recipients goes in the same transaction.
        const of = m.reportOf;
        if (of !== undefined && of.recipientIds.length > 0) await reportDone(tx, of);
      });
    } catch (err) {
      // Chunks stay: if the COMMIT did happen (connection lost during it), they are the body
      // of a stored message. Otherwise they are orphans, removed by maintenance later.
      this.#state = "aborted";
      throw err;
    }
    this.#state = "committed";
  }

  abort(): Promise<void> {
    if (this.#state === "aborted" || this.#state === "committed") return Promise.resolve();
    this.#state = "aborted";
    this.#removeChunks();
    return Promise.resolve();
  }

  #removeChunks(): void {
    if (this.#seq === 0) return;
    // Left-over rows are orphans, removed by maintenance a day later; not worth failing for.
    within(
      this.#deps.chunkSql`DELETE FROM message_chunks WHERE message_id = ${this.id}`,
      this.#deps.deadlineMs,
      "removal of an aborted body",
    ).catch((err) => {
      this.#deps.log.warn("queue_abort_cleanup_failed", { id: this.id, reason: String(err) });
    });
  }
}
