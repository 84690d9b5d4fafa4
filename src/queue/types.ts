/**
 * The queue as an interface (DESIGN.md): sessions put messages, claim a domain's recipients
 * with a lease, settle them, list and delete. No SQL here; the SQLite backend implements it.
 */

/**
 * Status of a waiting recipient as shown to operators (CONTRACT.md `queue list`). `expired`:
 * older than its domain's `max_age`; never delivered any more, removed after a grace period.
 */
export type RecipientStatus = "queued" | "delivering" | "failed" | "expired";

/** Mail waiting for one domain: what its quota is checked against. */
export interface DomainUsage {
  /** Messages with at least one recipient in the domain (any status). */
  readonly messages: number;
  /** Sum of those messages' body sizes. */
  readonly bytes: number;
}

/** MAIL FROM parameters kept with a message (forwarded when the next hop offers them). */
export interface MessageParams {
  readonly body?: "7BIT" | "8BITMIME" | "BINARYMIME";
  readonly smtputf8?: boolean;
  readonly ret?: "FULL" | "HDRS";
  readonly envid?: string;
}

/** A recipient as accepted at RCPT time. */
export interface NewRecipient {
  /** Forward-path without angle brackets, local part as received. */
  readonly address: string;
  /** Lower-case A-label of the address's domain. */
  readonly domain: string;
  readonly notify?: string;
  readonly orcpt?: string;
}

/** Envelope of a message being received. */
export interface NewMessage {
  /** Id from `QueueStore.newId()`, when the caller needed it before the body (trace header). */
  readonly id?: string;
  /** Reverse-path without angle brackets; "" for the null reverse-path. */
  readonly mailFrom: string;
  readonly params: MessageParams;
  readonly recipients: readonly NewRecipient[];
}

/** Streams one message body into the queue. */
export interface MessageWriter {
  /** Queue id, known before the body is written (for the Received: header). */
  readonly id: string;
  /** Appends body bytes; the writer copies what it keeps (the chunk may be reused). */
  write(chunk: Uint8Array): void;
  /** Resolves once the message and its recipients are durable (group commit). */
  commit(): Promise<void>;
  /** Forgets everything written so far. */
  abort(): void;
}

/** A waiting recipient as listed. */
export interface QueuedRecipient {
  /** Row id, used to settle exactly this recipient. */
  readonly id: number;
  readonly address: string;
  readonly domain: string;
  readonly status: RecipientStatus;
  readonly attempts: number;
  readonly lastReply?: string;
  readonly notify?: string;
  readonly orcpt?: string;
}

/** A waiting message as listed (no body). */
export interface QueuedMessage {
  readonly id: string;
  /** Milliseconds since the epoch. */
  readonly receivedAt: number;
  readonly mailFrom: string;
  /** Body size in bytes. */
  readonly size: number;
  readonly params: MessageParams;
  readonly recipients: readonly QueuedRecipient[];
}

/** How one recipient ended in a delivery attempt. */
export type SettleOutcome = "delivered" | "deferred" | "failed";

/** One recipient's result, with the reply that decided it (for `queue show`). */
export interface Settlement {
  readonly recipientId: number;
  readonly outcome: SettleOutcome;
  readonly reply: string;
}

/** Exclusive right to deliver the waiting recipients of some domains. */
export interface Lease {
  readonly domains: readonly string[];
  /** Messages with at least one `queued` recipient in the leased domains (only those recipients), oldest first. */
  messages(): Iterable<QueuedMessage>;
  /** Streams a message body in stored chunks, in order. */
  readBody(messageId: string): Iterable<Uint8Array>;
  /** Extends the lease; false if it was lost (expired and taken by another session). */
  renew(): boolean;
  /** Records results durably (batched: resolves once committed). */
  settle(results: readonly Settlement[]): Promise<void>;
  /** Gives the domains back; unsettled recipients stay queued. */
  release(): void;
}

/** Result of an ATRN claim. */
export type ClaimResult =
  | { readonly kind: "claimed"; readonly lease: Lease }
  /** Nothing waiting for any of the domains (ATRN 453). */
  | { readonly kind: "empty" }
  /** Another live session holds this domain (ATRN 451). */
  | { readonly kind: "busy"; readonly domain: string };

/** The queue. */
export interface QueueStore {
  /** A fresh, unique queue id (sortable by time). */
  newId(): string;
  /** Starts receiving a message. */
  begin(message: NewMessage): MessageWriter;
  /** Leases all of `domains` or none (PROTOCOL.md §1.7). */
  claim(domains: readonly string[], opts: { owner: string; leaseSeconds: number }): ClaimResult;
  list(opts?: { domain?: string }): QueuedMessage[];
  get(id: string): QueuedMessage | undefined;
  readBody(messageId: string): Iterable<Uint8Array>;
  /** Deletes messages; returns how many existed. */
  delete(ids: readonly string[]): number;
  deleteDomain(domain: string): number;
  /**
   * Drops every lease: called by `serve` at start, when no session of its own exists yet, so
   * that a crashed process's leases do not hold the domains until they expire. Assumes one
   * `serve` per data directory. Returns how many were dropped.
   */
  releaseAllLeases(): number;
  /** What `domain` holds now (counters kept with the rows: one indexed lookup). */
  usage(domain: string): DomainUsage;
  close(): void;
}
