/**
 * Streams one message body into `message_chunks` rows of a fixed size as bytes arrive (never
 * the whole message in memory), then adds the message and recipient rows at commit and waits
 * for the group COMMIT that holds them. A body shorter than one chunk goes in the message's
 * own row instead (`messages.body`, schema step 7): one row and two b-tree pages fewer. With
 * `BodyFiles` (a queue in a data directory), a longer body goes to a body file instead of chunk
 * rows (schema steps 8 and 9, _body_files.ts): the message's rows are written only once its bytes
 * are on disk.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { asError, errorText } from "../errors.ts";
import type { Logger } from "../observe/log.ts";
import type { BodyFiles, BodyFileWriter } from "./_body_files.ts";
import { segmentKey } from "./_body_segment.ts";
import { ChunkBuffer, type ChunkPool } from "./_chunk_buffer.ts";
import type { GroupTransaction, TxParticipant } from "./_group_tx.ts";
import { writeParams } from "./_rows.ts";
import type { UnsyncedMessages } from "./_unsynced.ts";
import type { MessageWriter, NewMessage } from "./types.ts";

/** Statements a writer needs, prepared once by the store. */
export interface WriterStatements {
  readonly insertChunk: StatementSync;
  readonly deleteChunks: StatementSync;
  readonly deleteMessage: StatementSync;
  readonly insertMessage: StatementSync;
  readonly insertRecipient: StatementSync;
  /** Whether a message row of this id is there (`found`). */
  readonly findMessage: StatementSync;
  /** Takes one recipient's pending report mark off (message id, recipient id). */
  readonly reportDone: StatementSync;
}

/** Prepares the writers' statements on the store's connection. */
export function prepareWriterStatements(db: DatabaseSync): WriterStatements {
  return {
    insertChunk: db.prepare(
      "INSERT INTO message_chunks (message_id, seq, bytes) VALUES (?, ?, ?)",
    ),
    deleteChunks: db.prepare("DELETE FROM message_chunks WHERE message_id = ?"),
    deleteMessage: db.prepare("DELETE FROM messages WHERE id = ?"),
    insertMessage: db.prepare(
      "INSERT INTO messages (id, received_at, mail_from, size, params, body, body_file, " +
        "submitter) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    insertRecipient: db.prepare(
      "INSERT INTO recipients (message_id, address, domain, notify, orcpt, route, " +
        "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ),
    findMessage: db.prepare("SELECT 1 AS found FROM messages WHERE id = ?"),
    reportDone: db.prepare(
      "DELETE FROM report_pending WHERE message_id = ? AND recipient_id = ?",
    ),
  };
}

/**
 * Removing the rows of a refused message needs no sync (one lost leaves a copy the sender also
 * sends again) and must still run after a failed sync, when `full` writes are refused.
 */
const CLEAN_UP = "normal";

type WriterState = "writing" | "committing" | "committed" | "aborted";

/** A `MessageWriter` over the shared group transaction. */
export class SqliteMessageWriter implements MessageWriter, TxParticipant {
  readonly id: string;
  readonly #message: NewMessage;
  readonly #receivedAt: number;
  readonly #group: GroupTransaction;
  readonly #sql: WriterStatements;
  readonly #log: Logger;
  readonly #buffer: ChunkBuffer;
  readonly #files: BodyFiles | undefined;
  /** The body's file, from its first full chunk on (with `#files`). */
  #file: BodyFileWriter | undefined;
  /** Told of a refused message whose rows may be left (_refused.ts). */
  readonly #refused: ((id: string) => void) | undefined;
  readonly #unsynced: UnsyncedMessages | undefined;
  #seq = 0;
  #size = 0;
  #state: WriterState = "writing";
  /** Set when a chunk could not be stored or its transaction rolled back; commit() fails. */
  #failure: Error | undefined;

  constructor(
    id: string,
    message: NewMessage,
    deps: {
      group: GroupTransaction;
      sql: WriterStatements;
      log: Logger;
      chunkBytes: number;
      receivedAt: number;
      /** Chunk-sized buffers shared by the store's writers (see ChunkBuffer). */
      pool?: ChunkPool;
      /** Where bodies of a chunk or more go; undefined: `message_chunks`. */
      files?: BodyFiles | undefined;
      /** Told the id of a refused message whose rows may be left (see #keepOrDrop). */
      refused?: (id: string) => void;
      /** Told of this message's rows from their COMMIT until their sync ends (_unsynced.ts). */
      unsynced?: UnsyncedMessages;
    },
  ) {
    this.id = id;
    this.#message = message;
    this.#group = deps.group;
    this.#sql = deps.sql;
    this.#log = deps.log;
    this.#buffer = new ChunkBuffer(deps.chunkBytes, deps.pool);
    this.#receivedAt = deps.receivedAt;
    this.#files = deps.files;
    this.#refused = deps.refused;
    this.#unsynced = deps.unsynced;
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.#state !== "writing") {
      return Promise.reject(new Error(`MessageWriter.write() after ${this.#state}`));
    }
    this.#size += chunk.length;
    if (this.#failure !== undefined) return Promise.resolve();
    // Async only when a chunk is handed out (its file may have to be waited for).
    if (this.#files !== undefined && this.#buffer.fillsWith(chunk.length)) {
      return this.#writeFile(chunk, this.#files);
    }
    for (const bytes of this.#buffer.add(chunk)) this.#storeChunk(bytes);
    return Promise.resolve();
  }

  /** `write` into the body's file, from the first full chunk on (a spare, taken then). */
  async #writeFile(chunk: Uint8Array, files: BodyFiles): Promise<void> {
    for (const bytes of this.#buffer.add(chunk)) {
      try {
        if (this.#file === undefined) {
          // Its segment is shared only with bodies that go where this one goes.
          const m = this.#message;
          const file = await files.take(segmentKey(m.recipients), m.declaredSize);
          // Aborted meanwhile: nothing will write or remove it but this.
          if (this.#state !== "writing") return file.discard();
          this.#file = file;
        }
        await this.#append(this.#file, bytes, files);
        this.#seq++;
      } catch (err) {
        this.#failure ??= asError(err);
        return;
      }
    }
  }

  /** Appends to the body's file, moved first to a segment of its own if it becomes big there. */
  async #append(to: BodyFileWriter, bytes: Uint8Array, files: BodyFiles): Promise<void> {
    let file = to;
    if (file.outgrows(bytes.length)) {
      this.#file = undefined;
      file = await files.move(file);
      this.#file = file;
      // Aborted meanwhile (#discard saw no file): nothing will remove it but this.
      if (this.#state === "aborted") {
        file.discard();
        throw new Error("MessageWriter aborted");
      }
    }
    file.write(bytes);
  }

  async commit(): Promise<void> {
    if (this.#state !== "writing") throw new Error(`MessageWriter.commit() after ${this.#state}`);
    this.#state = "committing";
    if (this.#failure !== undefined) return this.#fail(this.#failure);
    if (this.#file !== undefined && this.#files !== undefined) {
      try {
        // The body's last bytes, then the file and its name on disk before any row names it.
        if (!this.#buffer.isEmpty) await this.#append(this.#file, this.#buffer.take(), this.#files);
        this.#buffer.release();
        await this.#file.finish();
      } catch (err) {
        return this.#fail(asError(err));
      }
    }
    let durable: Promise<void>;
    try {
      // The last chunk and the message's rows in one write: all of them or none (its undo).
      const last = this.#buffer.isEmpty ? undefined : this.#buffer.take();
      // No chunk stored yet: the whole body is `last`, and it goes in the message's row.
      const inline = this.#seq === 0 ? last : undefined;
      // Set once this write's message row is in: only then may a failure remove it (with its
      // recipients). A last chunk left behind goes with the others (#discard).
      let inserted = false;
      durable = this.#group.writeDurable(this, () => {
        if (last !== undefined && inline === undefined) {
          this.#sql.insertChunk.run(this.id, this.#seq, last);
        }
        const m = this.#message;
        this.#sql.insertMessage.run(
          this.id,
          this.#receivedAt,
          m.mailFrom,
          this.#size,
          writeParams(m.params),
          inline ?? null,
          this.#file?.name ?? null,
          m.submitter ?? null,
        );
        inserted = true;
        for (const r of m.recipients) {
          this.#sql.insertRecipient.run(
            this.id,
            r.address,
            r.domain,
            r.notify ?? null,
            r.orcpt ?? null,
            r.route ?? "atrn",
            r.route === "mx" ? this.#receivedAt : null,
          );
        }
        // Last: if it throws, the undo takes the report away too (no mark off without it).
        for (const rid of m.reportOf?.recipientIds ?? []) {
          this.#sql.reportDone.run(m.reportOf?.messageId ?? "", rid);
        }
      }, () => {
        if (!inserted) return;
        this.#sql.deleteMessage.run(this.id);
        // Inserted and deleted in this one open transaction: whatever its COMMIT does, no row
        // names the body. The deletion's note is taken back (a COMMIT that failed took the note
        // with it and left the body counted until restart); the body is dropped now (#discard).
        const file = this.#file;
        if (file !== undefined) this.#files?.takeBackGone(file.name);
      });
      if (last !== undefined && inline === undefined) this.#seq++;
      // Visible to leases on this connection from now on, but not on disk before `durable`.
      this.#unsynced?.add(this.id, durable);
    } catch (err) {
      return this.#fail(asError(err));
    } finally {
      // The last bytes were bound (node:sqlite copies blobs) or not stored: the buffer is free.
      this.#buffer.release();
    }
    try {
      await durable;
    } catch (err) {
      // Rolled back, or committed but its sync failed: the sender hears 4xx and sends again,
      // so no row of this message may stay behind (a delivered copy would be a duplicate).
      return this.#fail(asError(err), { withMessage: true });
    } finally {
      this.#group.forget(this);
    }
    // Every row of this message was in the transaction that durable waited for, or in one
    // committed before commit() began (whose rollback set #failure, checked above).
    this.#state = "committed";
  }

  abort(): Promise<void> {
    // While committing, the commit's own outcome keeps or removes the rows: deleting chunks
    // under it could leave a message without its body.
    if (this.#state === "writing") this.#discard(false);
    return Promise.resolve();
  }

  txFailed(err: Error): void {
    this.#failure ??= err;
  }

  #storeChunk(bytes: Uint8Array): void {
    try {
      // node:sqlite copies bound blobs, so the buffer can be reused right away.
      this.#group.write(this, () => this.#sql.insertChunk.run(this.id, this.#seq, bytes));
      this.#seq++;
    } catch (err) {
      this.#failure ??= asError(err);
    }
  }

  #fail(err: Error, opts: { withMessage?: boolean } = {}): Promise<void> {
    this.#discard(opts.withMessage === true);
    return Promise.reject(err);
  }

  /**
   * Aborted: deletes the chunks stored so far, and the message's rows with `withMessage` (its
   * COMMIT failed: rolled back, or committed and its sync failed).
   */
  #discard(withMessage: boolean): void {
    this.#buffer.release();
    this.#group.forget(this);
    this.#state = "aborted";
    // With no row written, nothing points at the file. Else the file goes once the row's
    // deletion is on disk (BodyFiles.takeGone), or at the next start: dropping it here as well
    // would count a body of a shared segment out twice.
    if (!withMessage) this.#file?.discard();
    if (this.#file !== undefined && !withMessage) return;
    if (this.#seq === 0 && !withMessage) return;
    try {
      const rows = this.#group.write(undefined, () => {
        // Recipients go with the message (ON DELETE CASCADE).
        const gone = withMessage ? Number(this.#sql.deleteMessage.run(this.id).changes) : 0;
        this.#sql.deleteChunks.run(this.id);
        return gone;
      }, CLEAN_UP);
      // No row was left (its COMMIT rolled back): nothing names the file, it can go now.
      if (withMessage && rows === 0) this.#file?.discard();
    } catch (err) {
      // Left-over chunks are orphans, removed at the next start; a message row left is the
      // store's to hide and remove (#keepOrDrop). Not worth failing the session.
      this.#log.warn("queue_abort_cleanup_failed", { id: this.id, reason: errorText(err) });
      if (withMessage) this.#keepOrDrop();
    }
  }

  /**
   * The deletion of this message's rows failed: if no row of it is there (its COMMIT rolled
   * back), nothing names its file and it goes now, not at the next start (rev13a). If one is
   * (committed, its sync failed), or that cannot be told, the file stays with it, and the store
   * hides the message and deletes its rows later (`refused`): its sender heard 4xx.
   */
  #keepOrDrop(): void {
    let isThere = true;
    try {
      isThere = this.#sql.findMessage.get(this.id) !== undefined;
    } catch {
      // Unknown: kept (the next start removes a file no row names).
    }
    if (!isThere) return this.#file?.discard();
    this.#refused?.(this.id);
  }
}
