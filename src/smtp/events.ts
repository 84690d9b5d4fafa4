/**
 * Hooks the inbound SMTP side (the queue sink) reports to for counters, like
 * src/odmr/events.ts for the ODMR port: metrics in src/observe implement this, so sessions never
 * import the metrics registry. The reason vocabularies are fixed sets (bounded label values).
 */

/** Why a recipient was refused, as counted (`odmr_relay_rcpt_rejected_total{reason}`). */
export type RcptRejectLabel =
  | "relay_denied"
  | "routing"
  | "address_literal"
  | "postmaster"
  | "too_many_recipients"
  | "quota"
  | "other";

/** Why a message was refused at the end of its data (`odmr_relay_messages_refused_total`). */
/**
 * `size`: over `smtp.max_message_size`; `content`: bare CR/LF or an over-long line (smuggling);
 * `loop`: too many Received fields (src/wire/received_count.ts).
 */
export type MessageRefuseLabel =
  | "storage_full"
  | "quota"
  | "local_error"
  | "size"
  | "content"
  | "loop";

/** QueuedEvent's domain for a foreign destination: anyone may be written to, labels stay bounded. */
export const FOREIGN_DOMAIN = "other";

/** A message that is durable in the queue (its `250` is about to go out). */
export interface QueuedEvent {
  /**
   * The distinct recipient domains (lower-case A-labels, all owned by some user); recipients for
   * the world (route mx, submitted mail) count as FOREIGN_DOMAIN.
   */
  readonly domains: readonly string[];
  /** Body bytes as stored. */
  readonly bytes: number;
  /** From the end of data to the commit that made it durable. */
  readonly commitSeconds: number;
}

/** Counters the inbound side reports to. */
export interface SmtpEvents {
  messageQueued(event: QueuedEvent): void;
  rcptRejected(reason: RcptRejectLabel): void;
  messageRefused(reason: MessageRefuseLabel): void;
}

/**
 * The metric label of a sink's refusal reason. Unknown words count as `other`, so a new
 * reason in a sink can never grow the label set.
 */
export function rcptRejectLabel(reason: string): RcptRejectLabel {
  switch (reason) {
    case "relay":
      return "relay_denied";
    case "routing":
      return "routing";
    case "literal":
      return "address_literal";
    case "postmaster":
      return "postmaster";
    case "limit":
      return "too_many_recipients";
    case "quota":
      return "quota";
    default:
      return "other";
  }
}
