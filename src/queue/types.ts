/**
 * The queue as an interface: sessions put messages, claim a domain's recipients with a lease,
 * settle them, list and delete. Every method is async-shaped (a Promise, or an async iterable
 * for streams) so that a backend doing network I/O (PostgreSQL) fits behind it as well as the
 * embedded SQLite one. No SQL here; `serve`, the sessions and the commands see only this.
 */

/**
 * Status of a waiting recipient as shown to operators (README.md `queue list`). `expired`:
 * older than its domain's `max_age`; never delivered any more, removed after a grace period.
 */
export type RecipientStatus = "queued" | "delivering" | "failed" | "expired";

/** Where a recipient goes: collected by its owner with ATRN, or delivered to its domain's MX. */
export type Route = "atrn" | "mx";

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
  /** Default "atrn". An "mx" recipient is due at once (next attempt = received time). */
  readonly route?: Route;
}

/** Envelope of a message being received. */
export interface NewMessage {
  /** Id from `QueueStore.newId()`, when the caller needed it before the body (trace header). */
  readonly id?: string;
  /** Reverse-path without angle brackets; "" for the null reverse-path. */
  readonly mailFrom: string;
  /**
   * The user whose AUTH submitted it (the submission port); absent for received mail and the
   * server's own reports. The outbound signer signs `<>` mail only for its submitter's domains.
   */
  readonly submitter?: string;
  readonly params: MessageParams;
  readonly recipients: readonly NewRecipient[];
  /**
   * What the client's `SIZE=` said (RFC 1870), if it said: a body declared big starts alone in
   * a segment file instead of being moved there when it grows big (_body_segment.ts).
   */
  readonly declaredSize?: number;
  /**
   * The message is the failure report of these recipients (settled failed, their report
   * pending): its commit takes the pending mark off them, in the same transaction.
   */
  readonly reportOf?: ReportedRecipients;
}

/** Recipients of one message whose failure report is pending (schema: `report_pending`). */
export interface ReportedRecipients {
  readonly messageId: string;
  readonly recipientIds: readonly number[];
}

/** Streams one message body into the queue. */
export interface MessageWriter {
  /** Queue id, known before the body is written (for the Received: header). */
  readonly id: string;
  /**
   * Appends body bytes; the writer copies what it keeps before the promise resolves (the chunk
   * may be reused, or detached, once it resolved: serve's SMTP connections hand their read
   * buffer to the next connection at close, src/net/_read_buffers.ts `recycle`). A writer that
   * kept views until `commit()` would store empty bodies. A failure to store may surface here or
   * at `commit()`.
   */
  write(chunk: Uint8Array): Promise<void>;
  /** Resolves once the message and its recipients are durable (group commit). */
  commit(): Promise<void>;
  /** Forgets everything written so far (never rejects: leftovers are orphans, removed later). */
  abort(): Promise<void>;
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
  readonly route: Route;
  /** Route "mx": milliseconds since the epoch of the next delivery attempt. */
  readonly nextAttemptAt?: number;
}

/** A waiting message as listed (no body). */
export interface QueuedMessage {
  readonly id: string;
  /** Milliseconds since the epoch. */
  readonly receivedAt: number;
  readonly mailFrom: string;
  /** Who submitted it (NewMessage.submitter); absent for other mail and older rows. */
  readonly submitter?: string;
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
  /**
   * The recipient's message (`QueuedMessage.id`). A settlement changes only the recipient of
   * this id in this message: a row id alone may name another message's recipient by then (the
   * message was removed under its lease, by a second drain after the lease lapsed or by
   * `queue delete`, and SQLite gave its highest recipient id to the next insert).
   */
  readonly messageId: string;
  readonly outcome: SettleOutcome;
  readonly reply: string;
  /**
   * Outcome "deferred" of an mx-route recipient: not offered again before this (milliseconds
   * since the epoch). Without it the recipient is due again at once.
   */
  readonly retryAt?: number;
}

/** Exclusive right to deliver the waiting recipients of some domains. */
export interface Lease {
  readonly domains: readonly string[];
  /** Messages with at least one `queued` recipient in the leased domains (only those recipients), oldest first. */
  messages(): AsyncIterable<QueuedMessage>;
  /**
   * Streams a message body in stored chunks, in order; a backend that reads synchronously
   * (SQLite) gives a plain iterable, without a promise per chunk.
   */
  readBody(messageId: string): AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Extends the lease; false if it was lost (expired and taken by another session). */
  renew(): Promise<boolean>;
  /** Records results durably (batched: resolves once committed). */
  settle(results: readonly Settlement[]): Promise<void>;
  /** Gives the domains back; unsettled recipients stay queued. */
  release(): Promise<void>;
}

/** Result of an ATRN claim. */
export type ClaimResult =
  | { readonly kind: "claimed"; readonly lease: Lease }
  /** Nothing waiting for any of the domains (ATRN 453). */
  | { readonly kind: "empty" }
  /** Another live session holds this domain (ATRN 451). */
  | { readonly kind: "busy"; readonly domain: string };

/** Waiting mail of one domain (the queue gauges). */
export interface DomainStats {
  readonly domain: string;
  /** The same domain may wait on both routes: one entry per route. */
  readonly route: Route;
  readonly messages: number;
  readonly bytes: number;
  /** Milliseconds since the epoch. */
  readonly oldestReceivedAt: number;
}

/** An outbound claim (`QueueStore.claimOutbound`). */
export interface OutboundClaimOptions {
  /** Node/session id, like `claim()`'s. */
  readonly owner: string;
  readonly leaseSeconds: number;
  /** Milliseconds since the epoch (tests pass a fake clock). */
  readonly now: number;
}

/** Which messages `QueueStore.list()` returns. */
export interface ListFilter {
  /** Only messages with a recipient in this domain, and only those recipients. */
  readonly domain?: string;
}

/** What a maintenance pass needs to know from the configuration and the users. */
export interface MaintenanceOptions {
  /** Our host name (Reporting-MTA, the DSN's From: domain). */
  readonly hostname: string;
  /** The retention of `domain` (its own, or the global `queue.max_age`), in milliseconds. */
  readonly maxAgeMs: (domain: string) => number;
  /** True when some user owns `domain`: only then is a DSN to a sender there kept. */
  readonly isLocalDomain: (domain: string) => boolean;
  /** `outbound.max_age`: an mx-route recipient this old expires with a failure DSN. */
  readonly outboundMaxAgeMs: number;
  /** `outbound.delay_notice`: then one delay DSN per message (RFC 3464 action=delayed). */
  readonly delayNoticeMs: number;
  /** Bounces to foreign senders allowed in this pass; the rest are dropped and logged. */
  readonly foreignBounceBudget: number;
}

/** What one maintenance pass did. */
export interface MaintenanceReport {
  readonly expiredRecipients: number;
  readonly dsnQueued: number;
  readonly dsnDropped: number;
  /** Delay DSNs queued (one per message at most, ever). */
  readonly delayNotices: number;
  /** Of the DSNs queued (failure and delay), those to foreign senders: spent budget. */
  readonly foreignDsnQueued: number;
  readonly removedRecipients: number;
  /** Storage given back (SQLite: free pages); 0 where the backend does it itself. */
  readonly vacuumedPages: number;
}

/** The queue. */
export interface QueueStore {
  /** A fresh, unique queue id (sortable by time). */
  newId(): Promise<string>;
  /** Starts receiving a message. */
  begin(message: NewMessage): Promise<MessageWriter>;
  /** Leases all of `domains` or none (RFC 2645 §5.2.1); route "atrn" recipients only. */
  claim(
    domains: readonly string[],
    opts: { owner: string; leaseSeconds: number },
  ): Promise<ClaimResult>;
  /**
   * Leases ONE destination domain that has mx-route recipients due (queued, next attempt at
   * or before `now`, the domain not under an outbound lease): the one whose earliest due
   * recipient is oldest; undefined when none is due. Its `messages()` yields only that
   * domain's due mx-route recipients; renew/settle/release as for ATRN leases. Outbound
   * leases are a namespace of their own: they never block an ATRN claim, nor it them.
   */
  claimOutbound(opts: OutboundClaimOptions): Promise<Lease | undefined>;
  /** Earliest next attempt among queued mx-route recipients (the worker's sleep), or undefined. */
  nextOutboundAt(): Promise<number | undefined>;
  /**
   * The queued mx-route recipients of `domains` (domains that have become a user's) are held
   * for their ATRN instead (route "atrn", no next attempt), counters kept, in one transaction;
   * returns how many. Route "atrn" mail never goes the other way (_hold.ts).
   */
  holdForAtrn(domains: readonly string[]): Promise<number>;
  /** Messages oldest first, each with its recipients (those of `filter.domain` only, if set). */
  list(filter?: ListFilter): Promise<QueuedMessage[]>;
  get(id: string): Promise<QueuedMessage | undefined>;
  /**
   * Streams a message body in stored chunks, in order; throws when there is no such message or
   * its body is not whole (before its first byte, or where its tail went while it was read).
   */
  readBody(messageId: string): AsyncIterable<Uint8Array>;
  /** Deletes messages; returns how many existed. */
  delete(ids: readonly string[]): Promise<number>;
  /** Deletes `domain`'s recipients and the messages left without any; returns messages touched. */
  deleteDomain(domain: string): Promise<number>;
  /**
   * Drops the leases a previous process of this node left behind: called by `serve` at start,
   * when no session of its own exists yet, so that a crashed process's leases do not hold the
   * domains until they expire. Returns how many were dropped.
   */
  releaseAllLeases(): Promise<number>;
  /** What `domain` holds now for ATRN (route "atrn" only; counters kept with the rows: one indexed lookup). */
  usage(domain: string): Promise<DomainUsage>;
  /** Per-domain totals of mail still to deliver (queued, not failed or expired), for the gauges. */
  domainStats(): Promise<DomainStats[]>;
  /**
   * Takes the pending mark off failed recipients whose report was decided against (`<>`,
   * NOTIFY, the foreign-bounce limit): maintenance would otherwise queue it later.
   */
  reportDecided(reported: ReportedRecipients): Promise<void>;
  /** One bounded maintenance pass: expiry with DSNs, removal after the grace period, vacuum. */
  maintain(opts: MaintenanceOptions): Promise<MaintenanceReport>;
  /** Resolves when the database answers; rejects with the reason when it does not (/healthz). */
  ping(): Promise<void>;
  /** Commits pending writes and closes the backend. */
  close(): Promise<void>;
}
