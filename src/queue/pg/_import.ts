/**
 * `queue migrate`'s copy of one message from a SQLite queue. Each copied id is recorded in
 * `migrated_messages` (schema step 7) in the transaction that copies the message, so a copy
 * cut off anywhere can be run again: what was copied is skipped, even once the nodes have
 * delivered it and its rows are gone, and what was not is copied now. A failure report the
 * source still owed (`report_pending`) stays owed here, under the recipient's new id, for the
 * nodes' maintenance to queue; a delay notice sent (`delay_notified`) is not sent again; who
 * submitted it (`submitter`) stays known, for the outbound signer.
 */
import { writeParams } from "../_rows.ts";
import type { QueuedMessage } from "../types.ts";
import type { Sql } from "./connect.ts";
import { transactionWithin } from "./_deadline.ts";

/** What the source store holds of a message beside its rows as listed. */
export interface ImportSource {
  /** The body, in chunks. */
  readonly body: AsyncIterable<Uint8Array>;
  /** The source's ids of the recipients whose failure report is still owed. */
  readonly reportPending: ReadonlySet<number>;
  /** The message's one delay notice went out (or was decided against): never again. */
  readonly delayNotified: boolean;
}

/**
 * Copies `message` as another store holds it (recipient status, attempts and last reply kept;
 * body streamed in chunks; reports owed stay owed, a delay notice sent stays sent), all in one
 * transaction, which must answer within `ms` (PG_LONG_DEADLINE_MS: a silent connection held
 * migrate for good). False, copying nothing, when its id was copied before or is already queued
 * here. A COMMIT answered late needs no undo: the copy is recorded, and a run again skips it.
 */
export async function importMessagePg(
  sql: Sql,
  now: number,
  message: QueuedMessage,
  source: ImportSource,
  ms: number,
): Promise<boolean> {
  return await transactionWithin(sql, ms, "import of a message", async (tx) => {
    const [first] = await tx`INSERT INTO migrated_messages (id) VALUES (${message.id})
      ON CONFLICT (id) DO NOTHING RETURNING id`;
    if (first === undefined) return false;
    const [row] = await tx`INSERT INTO messages (id, received_at, mail_from, size, params,
        delay_notified, submitter)
      VALUES (${message.id}, ${message.receivedAt}, ${message.mailFrom}, ${message.size},
        ${writeParams(message.params)}, ${source.delayNotified}, ${message.submitter ?? null})
      ON CONFLICT (id) DO NOTHING RETURNING id`;
    // Queued here but not recorded: copied by a migrate older than step 7; recorded now.
    if (row === undefined) return false;
    let seq = 0;
    for await (const chunk of source.body) {
      await tx`INSERT INTO message_chunks (message_id, seq, bytes, created_at)
        VALUES (${message.id}, ${seq++}, ${chunk}, ${now})`;
    }
    for (const r of message.recipients) {
      const isFailed = r.status === "failed" || r.status === "expired";
      const [copy] = await tx`INSERT INTO recipients (message_id, address, domain, status, attempts,
          last_reply, notify, orcpt, expired_at, route, next_attempt_at)
        VALUES (${message.id}, ${r.address}, ${r.domain}, ${isFailed ? "failed" : "queued"},
          ${r.attempts}, ${r.lastReply ?? null}, ${r.notify ?? null}, ${r.orcpt ?? null},
          ${r.status === "expired" ? now : null}, ${r.route},
          ${r.route === "mx" ? (r.nextAttemptAt ?? message.receivedAt) : null}) RETURNING id`;
      // Under its id here (a new one): the nodes' maintenance queues the report (step 6).
      if (isFailed && source.reportPending.has(r.id) && copy !== undefined) {
        await tx`INSERT INTO report_pending (message_id, recipient_id)
          VALUES (${message.id}, ${copy.id})`;
      }
    }
    return true;
  }, () => {});
}
