/**
 * The pending failure reports on PostgreSQL (schema step 6, src/queue/pg/schema.ts): a
 * recipient settled failed is marked in its settlement's transaction, and the mark goes with
 * the transaction that queued its report (or decided against one).
 */
import type { ReportedRecipients } from "../types.ts";
import type { Sql, Tx } from "./connect.ts";

/** Takes the pending mark off `of`'s recipients. */
export async function reportDone(tx: Tx | Sql, of: ReportedRecipients): Promise<void> {
  await tx`DELETE FROM report_pending WHERE message_id = ${of.messageId}
    AND recipient_id = ANY(${[...of.recipientIds]}::bigint[])`;
}
