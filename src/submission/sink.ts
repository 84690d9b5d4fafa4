/**
 * The submission port's policy around the queue sink: only an authenticated user that still
 * exists may send (`530 5.7.0` once removed, even for `<>`), only from an address in one of its
 * own domains (`553 5.7.1` otherwise; for `<>`, the header From at the end of data, `550 5.7.1`),
 * one From field at most (`554 5.6.0`), within its hourly message and recipient allowance
 * (`450 4.7.1`; a message counts once the queue began it, a recipient once accepted). Recipients are then decided by the inner sink
 * (the queue: our own domains go straight to the ATRN queue, other domains to the outbound
 * queue for their MX; address tricks that name another host inside the address are refused
 * here as on the MX).
 */
import { normalizeDomain } from "../auth/domain.ts";
import type { Logger } from "../observe/log.ts";
import type {
  MailFrom,
  MessageSink,
  RcptAhead,
  RcptTo,
  SessionInfo,
  SinkTransaction,
} from "../smtp/sink.ts";
import { REPLIES } from "../wire/replies.ts";
import { isPositive, reply } from "../wire/reply.ts";
import type { Reply } from "../wire/reply.ts";
import type { SubmissionRate } from "./rate.ts";
import { FromFieldReader, isOwnedAuthor } from "./_header_from.ts";

/** MAIL FROM outside the authenticated user's domains (RFC 6409 §6.1 "may enforce"). */
export const SENDER_NOT_OWNED: Reply = reply(
  553,
  "5.7.1",
  "Sender address not owned by the authenticated user",
);
/**
 * More than one From field (RFC 5322 §3.6 allows one): the outbound signer would vouch for an
 * author a reader may not be shown. Refused at the end of data.
 */
export const TWO_FROM_FIELDS: Reply = reply(
  554,
  "5.6.0",
  "Message has more than one From header field",
);
/**
 * `MAIL FROM:<>` mail whose From names a domain not the user's: the header From is the only
 * identity such mail claims (a receiver checks SPF for `<>` against our HELO name, RFC 7208
 * §2.4), so it must be the user's, as the reverse-path of other mail must be (RFC 6409 §6.1).
 */
export const AUTHOR_NOT_OWNED: Reply = reply(
  550,
  "5.7.1",
  "From header not owned by the authenticated user",
);
/** The user's hourly message allowance is spent (temporary: its MTA retries later). */
export const MESSAGE_RATE_REPLY: Reply = reply(
  450,
  "4.7.1",
  "Message rate limit reached, try later",
);
/** The user's hourly recipient allowance is spent. */
export const RECIPIENT_RATE_REPLY: Reply = reply(
  450,
  "4.7.1",
  "Recipient rate limit reached, try later",
);

/** What the policy needs. */
export interface SubmissionSinkOptions {
  /** The sink that stores accepted mail (the queue sink). */
  readonly inner: MessageSink;
  /** The domains `user` owns (lower-case A-labels), read at every MAIL. */
  readonly domainsOf: (user: string) => readonly string[];
  /** Whether `user` still exists (asked only when it owns no domain). */
  readonly hasUser: (user: string) => boolean;
  readonly rate: SubmissionRate;
  readonly log: Logger;
}

/** Where the submission receiver puts mail. */
export class SubmissionSink implements MessageSink {
  readonly #opts: SubmissionSinkOptions;

  constructor(opts: SubmissionSinkOptions) {
    this.#opts = opts;
  }

  async begin(mail: MailFrom, session: SessionInfo): Promise<SinkTransaction | Reply> {
    const user = session.authenticatedUser;
    if (user === undefined) return REPLIES.authRequired;
    const domains = this.#opts.domainsOf(user);
    if (domains.length === 0 && !this.#opts.hasUser(user)) {
      // Removed while this session was open: its AUTH proves nothing any more (not even for <>).
      this.#opts.log.warn("submission_user_gone", { user, from: mail.address });
      return REPLIES.authRequired;
    }
    if (!isOwnedSender(mail.address, domains)) {
      this.#opts.log.warn("submission_sender_refused", { user, from: mail.address });
      return SENDER_NOT_OWNED;
    }
    if (!this.#opts.rate.takeMessage(user)) {
      this.#opts.log.warn("submission_rate_limited", { user, what: "messages" });
      return MESSAGE_RATE_REPLY;
    }
    let inner: SinkTransaction | Reply | undefined;
    try {
      inner = await this.#opts.inner.begin(mail, session);
    } finally {
      // Refused (full disk) or failed: the message was never begun, so it does not count.
      if (inner === undefined || "code" in inner) this.#opts.rate.returnMessage(user);
    }
    if ("code" in inner) return inner;
    return new SubmissionTransaction(inner, { user, mail }, this.#opts);
  }
}

/**
 * True when `address` (a reverse-path without brackets) is in one of `domains`. The null
 * reverse-path is allowed: a user's own MTA sends its bounces with it (RFC 5321 §4.5.5).
 */
export function isOwnedSender(address: string, domains: readonly string[]): boolean {
  if (address === "") return true;
  const at = address.lastIndexOf("@");
  if (at < 0) return false;
  const domain = normalizeDomain(address.slice(at + 1));
  return domain !== undefined && domains.includes(domain);
}

/**
 * One submitted message on its way to the queue: recipients within the allowance, the header
 * From fields checked at the end. Only `finish`: no `finishLater` or `finishEach` would pass
 * the message on without that check.
 */
class SubmissionTransaction implements SinkTransaction {
  readonly #inner: SinkTransaction;
  readonly #user: string;
  readonly #isNullSender: boolean;
  readonly #opts: SubmissionSinkOptions;
  readonly #from = new FromFieldReader();

  constructor(
    inner: SinkTransaction,
    who: { readonly user: string; readonly mail: MailFrom },
    opts: SubmissionSinkOptions,
  ) {
    this.#inner = inner;
    this.#user = who.user;
    this.#isNullSender = who.mail.address === "";
    this.#opts = opts;
  }

  get id(): string {
    return this.#inner.id;
  }

  /**
   * The token is taken before the queue decides (RCPTs of a pipelined group may be decided
   * at once) and given back when it refuses: only accepted recipients count.
   */
  async addRecipient(rcpt: RcptTo, ahead?: RcptAhead): Promise<Reply> {
    const rate = this.#opts.rate;
    if (!rate.takeRecipient(this.#user)) {
      this.#opts.log.warn("submission_rate_limited", { user: this.#user, what: "recipients" });
      return RECIPIENT_RATE_REPLY;
    }
    let decided: Reply | undefined;
    try {
      decided = await this.#inner.addRecipient(rcpt, ahead);
      return decided;
    } finally {
      if (decided === undefined || !isPositive(decided)) rate.returnRecipient(this.#user);
    }
  }

  write(chunk: Uint8Array): Promise<void> {
    this.#from.push(chunk);
    return this.#inner.write(chunk);
  }

  async finish(): Promise<Reply> {
    const refusal = this.#fromRefusal();
    if (refusal === undefined) return await this.#inner.finish();
    await this.#inner.abort();
    return refusal;
  }

  abort(): Promise<void> {
    return this.#inner.abort();
  }

  /** Why the header From fields refuse the message, if they do. */
  #fromRefusal(): Reply | undefined {
    const from = this.#from.end();
    if (from.kind === "read" && from.froms.length > 1) {
      this.#opts.log.warn("submission_from_refused", { user: this.#user, reason: "two_from" });
      return TWO_FROM_FIELDS;
    }
    if (!this.#isNullSender) return undefined;
    // Read again, as at MAIL: a domain taken from the user meanwhile no longer passes.
    const domains = this.#opts.domainsOf(this.#user);
    if (from.kind === "read" && isOwnedAuthor(from.froms, domains)) return undefined;
    this.#opts.log.warn("submission_from_refused", { user: this.#user, reason: "not_owned" });
    return AUTHOR_NOT_OWNED;
  }
}
