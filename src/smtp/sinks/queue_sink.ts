/**
 * The inbound MX's sink: recipients only for domains a user owns (never an open relay,
 * docs/protocol.md §6.3), the body streamed into the queue, `250` only after the commit.
 * The domain check runs on every RCPT (a user added while serving is seen at once). Behind
 * the submission policy (AUTH done) it also takes recipients of other domains, queued for
 * delivery to their MX (route "mx"); the MX listener never sets that option. The user whose
 * AUTH submitted a message (only the submission port authenticates) is stored with it.
 */
import type { MailFrom, MessageSink, RcptTo, SessionInfo, SinkTransaction } from "../sink.ts";
import type { MessageWriter, NewRecipient, QueueStore } from "../../queue/types.ts";
import type { Logger } from "../../observe/log.ts";
import type { Reply } from "../../wire/reply.ts";
import { queuedReply, REPLIES } from "../../wire/replies.ts";
import { reply } from "../../wire/reply.ts";
import { exceededQuota, type QuotaLimits } from "../../queue/quota.ts";
import type { SmtpEvents } from "../events.ts";
import { FOREIGN_DOMAIN, rcptRejectLabel } from "../events.ts";

/** Options of the queue sink. */
export interface QueueSinkOptions {
  readonly store: QueueStore;
  /** True when some user owns `domain` (lower-case A-label); asked on every RCPT. */
  readonly isLocalDomain: (domain: string) => boolean;
  readonly log: Logger;
  readonly maxRecipients: number;
  /** Where the bare `<Postmaster>` goes; without it, the bare form is refused. */
  readonly postmasterDomain?: string;
  /** Counters (src/smtp/events.ts): queued, recipients and messages refused. */
  readonly events?: SmtpEvents;
  /** The quota of `domain`, if it has one (checked at RCPT and at the end of DATA). */
  readonly quotaOf?: (domain: string) => QuotaLimits | undefined;
  /**
   * Submission only (an authenticated sender): a recipient outside our domains is queued on
   * route "mx" for delivery to its MX instead of refused with 550 5.7.1.
   */
  readonly deliverForeign?: boolean;
  /** Called after a commit that queued some recipient on route "mx" (wakes the worker). */
  readonly onOutboundQueued?: () => void;
  /** Called when a message is refused for lack of space (452 4.3.1): serve's /healthz. */
  readonly onStorageFull?: () => void;
}

/** A domain over its quota (issue 7): temporary, the sender retries and nothing is lost. */
export const QUOTA_REPLY: Reply = reply(452, "4.2.2", "Mailbox full, try again later");

/** Why a recipient was refused, for logs and the rcpt_rejected metric. */
export type RcptRejectReason = "relay" | "routing" | "literal" | "postmaster" | "limit";

/**
 * Decides one recipient: the queued recipient, or why it is refused. Pure apart from the
 * `isLocalDomain` call.
 */
export function decideRecipient(
  rcpt: RcptTo,
  opts: Pick<QueueSinkOptions, "isLocalDomain" | "postmasterDomain" | "deliverForeign">,
): { ok: true; recipient: NewRecipient } | { ok: false; reason: RcptRejectReason } {
  const dsn = {
    ...(rcpt.notify !== undefined ? { notify: rcpt.notify } : {}),
    ...(rcpt.orcpt !== undefined ? { orcpt: rcpt.orcpt } : {}),
  };
  if (rcpt.domain === "") {
    // RFC 5321 §4.5.1: the bare <Postmaster> is this server's own postmaster.
    const pd = opts.postmasterDomain;
    if (pd === undefined || !opts.isLocalDomain(pd)) return { ok: false, reason: "postmaster" };
    return { ok: true, recipient: { address: `postmaster@${pd}`, domain: pd, ...dsn } };
  }
  if (rcpt.domain.startsWith("[")) return { ok: false, reason: "literal" };
  const at = rcpt.address.lastIndexOf("@");
  const localPart = at < 0 ? rcpt.address : rcpt.address.slice(0, at);
  // %-hacks, bang paths and quoted @ name another host inside the local part: never accepted,
  // so no customer MTA downstream can be made to relay with them (docs/protocol.md §6.3).
  if (/[%!@]/.test(localPart)) return { ok: false, reason: "routing" };
  if (!opts.isLocalDomain(rcpt.domain)) {
    if (opts.deliverForeign !== true) return { ok: false, reason: "relay" };
    return {
      ok: true,
      recipient: { address: rcpt.address, domain: rcpt.domain, ...dsn, route: "mx" },
    };
  }
  return { ok: true, recipient: { address: rcpt.address, domain: rcpt.domain, ...dsn } };
}

/**
 * SQLITE_FULL (13), ENOSPC, or PostgreSQL's disk_full (SQLSTATE 53100, a PostgresError's `code`):
 * the disk is full, a 452 rather than a 451, whichever queue backend.
 */
export function isStorageFull(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { errcode?: unknown; code?: unknown; message?: unknown };
  if (e.errcode === 13 || e.code === "ENOSPC" || e.code === "SQLITE_FULL") return true;
  if (e.code === "53100") return true;
  return typeof e.message === "string" && /SQLITE_FULL|database or disk is full/i.test(e.message);
}

/** A recipient domain and its quota. */
interface DomainQuota {
  readonly domain: string;
  readonly limits: QuotaLimits;
}

const NO_QUOTAS: readonly DomainQuota[] = [];

/** MessageSink that puts mail into the queue. */
export class QueueSink implements MessageSink {
  readonly #opts: QueueSinkOptions;

  constructor(opts: QueueSinkOptions) {
    this.#opts = opts;
  }

  async begin(mail: MailFrom, session: SessionInfo): Promise<SinkTransaction | Reply> {
    const id = await this.#opts.store.newId();
    return new QueueTransaction(id, this.#opts, mail, session);
  }
}

class QueueTransaction implements SinkTransaction {
  readonly id: string;
  readonly #opts: QueueSinkOptions;
  readonly #mail: MailFrom;
  readonly #sessionId: string;
  /** The user whose AUTH submits it (submission); undefined on the MX port. */
  readonly #submitter: string | undefined;
  /** The transaction's logger, made when first used (most messages log nothing here). */
  #txLog: Logger | undefined;
  readonly #recipients: NewRecipient[] = [];
  #writer: Promise<MessageWriter> | undefined;
  #failure: unknown;
  #isOver = false;
  #bytes = 0;

  constructor(id: string, opts: QueueSinkOptions, mail: MailFrom, session: SessionInfo) {
    this.#opts = opts;
    this.#mail = mail;
    this.id = id;
    this.#sessionId = session.sessionId;
    this.#submitter = session.authenticatedUser;
  }

  get #log(): Logger {
    return this.#txLog ??= this.#opts.log.with({ id: this.id, session: this.#sessionId });
  }

  async addRecipient(rcpt: RcptTo): Promise<Reply> {
    if (this.#recipients.length >= this.#opts.maxRecipients) return this.#refuse(rcpt, "limit");
    const decided = decideRecipient(rcpt, this.#opts);
    if (!decided.ok) return this.#refuse(rcpt, decided.reason);
    // At least one byte will come: a domain exactly at its byte quota is full already.
    const quotas = this.#quotasOf([decided.recipient]);
    let isOver = false;
    try {
      if (quotas.length > 0) {
        isOver = await this.#isOverQuota(quotas, Math.max(this.#mail.declaredSize ?? 0, 1));
      }
    } catch (err) {
      // The queue cannot tell (database down): a temporary refusal, never an accept.
      this.#log.error("queue_usage_failed", { error: String(err) });
      return REPLIES.localError;
    }
    if (isOver) {
      this.#opts.events?.rcptRejected("quota");
      return QUOTA_REPLY;
    }
    this.#recipients.push(decided.recipient);
    return REPLIES.recipientOk;
  }

  #refuse(rcpt: RcptTo, reason: RcptRejectReason): Reply {
    this.#log.info("rcpt_rejected", { reason, domain: rcpt.domain });
    this.#opts.events?.rcptRejected(rcptRejectLabel(reason));
    return reason === "limit" ? REPLIES.tooManyRecipients : REPLIES.relayDenied;
  }

  /** The queue row is created at the first body bytes, when the envelope is complete. */
  #open(): Promise<MessageWriter> {
    this.#writer ??= this.#opts.store.begin({
      id: this.id,
      mailFrom: this.#mail.address,
      // Kept with the message: the outbound signer signs `<>` mail for its submitter only.
      ...(this.#submitter === undefined ? {} : { submitter: this.#submitter }),
      params: this.#mail.params,
      recipients: this.#recipients,
      ...(this.#mail.declaredSize === undefined ? {} : { declaredSize: this.#mail.declaredSize }),
    });
    return this.#writer;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#failure !== undefined || this.#isOver) return;
    try {
      const writer = await this.#open();
      await writer.write(chunk);
      this.#bytes += chunk.length;
    } catch (err) {
      // Remembered and answered at finish(): the receiver still reads to the end of data.
      this.#failure = err;
    }
  }

  async finish(): Promise<Reply> {
    if (this.#failure === undefined) {
      try {
        const quotas = this.#quotasOf(this.#recipients);
        if (quotas.length > 0 && await this.#isOverQuota(quotas, this.#bytes)) {
          await this.abort();
          this.#opts.events?.messageRefused("quota");
          return QUOTA_REPLY;
        }
      } catch (err) {
        this.#failure = err;
      }
    }
    if (this.#failure === undefined) {
      try {
        const endOfDataAt = performance.now();
        const writer = await this.#open();
        await writer.commit();
        this.#isOver = true;
        // Debug: serve's message trace logs the `queued` line with every field (TracedSink).
        if (this.#opts.log.isEnabled?.("debug") !== false) {
          this.#log.debug("message_queued", { recipients: this.#recipients.length });
        }
        if (this.#recipients.some((r) => r.route === "mx")) this.#opts.onOutboundQueued?.();
        this.#opts.events?.messageQueued({
          domains: domainsOf(this.#recipients),
          bytes: this.#bytes,
          commitSeconds: (performance.now() - endOfDataAt) / 1000,
        });
        return queuedReply(this.id);
      } catch (err) {
        this.#failure = err;
      }
    }
    const err = this.#failure;
    this.#log.error("queue_write_failed", { error: String(err) });
    await this.abort();
    const isFull = isStorageFull(err);
    this.#opts.events?.messageRefused(isFull ? "storage_full" : "local_error");
    if (isFull) this.#opts.onStorageFull?.();
    return isFull ? REPLIES.storageFull : REPLIES.localError;
  }

  /**
   * The quotas the recipients' domains have, once per domain; none (the usual case) without
   * asking the queue anything or waiting at all.
   */
  #quotasOf(recipients: readonly NewRecipient[]): readonly DomainQuota[] {
    const quotaOf = this.#opts.quotaOf;
    if (quotaOf === undefined) return NO_QUOTAS;
    let quotas: DomainQuota[] | undefined;
    for (const r of recipients) {
      // Mail for the world counts against no quota: quotas bound what a customer must collect.
      if (r.route === "mx" || quotas?.some((q) => q.domain === r.domain)) continue;
      const limits = quotaOf(r.domain);
      if (limits !== undefined) (quotas ??= []).push({ domain: r.domain, limits });
    }
    return quotas ?? NO_QUOTAS;
  }

  /** True when one more message of `bytes` would put one of these domains over its quota. */
  async #isOverQuota(quotas: readonly DomainQuota[], bytes: number): Promise<boolean> {
    for (const { domain, limits } of quotas) {
      const usage = await this.#opts.store.usage(domain);
      const limit = exceededQuota(usage, limits, bytes);
      if (limit === undefined) continue;
      this.#log.info("quota_exceeded", { domain, limit, ...usage, size: bytes });
      return true;
    }
    return false;
  }

  async abort(): Promise<void> {
    if (this.#isOver) return;
    this.#isOver = true;
    try {
      // A writer that never opened (begin failed) has nothing to forget.
      const writer = await this.#writer?.catch(() => undefined);
      await writer?.abort();
    } catch (err) {
      this.#log.error("queue_abort_failed", { error: String(err) });
    }
  }
}

/**
 * The recipients' domains, each once (one recipient, the usual case: no set to build); a foreign
 * destination (route mx, submission) as FOREIGN_DOMAIN, so it never becomes a label of its own.
 */
function domainsOf(recipients: readonly NewRecipient[]): string[] {
  const label = (r: NewRecipient) => r.route === "mx" ? FOREIGN_DOMAIN : r.domain;
  if (recipients.length === 1) return [label(recipients[0]!)];
  return [...new Set(recipients.map(label))];
}
