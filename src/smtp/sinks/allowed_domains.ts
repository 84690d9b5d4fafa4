/**
 * A MessageSink wrapper for the customer after ATRN: refuses every RCPT outside the domains
 * the customer asked for with `550 5.7.1`, so a hostile or buggy provider cannot relay
 * through the home network (RFC 2645 §8, docs/protocol.md §1.8). Everything else is passed on.
 */
import type {
  MailFrom,
  MessageSink,
  RcptAhead,
  RcptTo,
  SessionInfo,
  SinkTransaction,
} from "../sink.ts";
import { reply } from "../../wire/reply.ts";
import type { Reply } from "../../wire/reply.ts";
import type { Logger } from "../../observe/log.ts";
import { NULL_LOGGER } from "../../observe/log.ts";
import { ForwardingTransaction } from "./forwarding.ts";

/** The refusal for a recipient outside the ATRN domains. */
export const FOREIGN_RECIPIENT_REPLY: Reply = reply(550, "5.7.1", "Relaying denied");

/** Refuses recipients whose domain is not in `domains` (lower-case A-labels). */
export class AllowedDomainsSink implements MessageSink {
  readonly #inner: MessageSink;
  readonly #domains: ReadonlySet<string>;
  readonly #log: Logger;

  constructor(inner: MessageSink, domains: readonly string[], log: Logger = NULL_LOGGER) {
    this.#inner = inner;
    this.#domains = new Set(domains.map((d) => d.toLowerCase()));
    this.#log = log;
  }

  /** True when `domain` (already a lower-case A-label, as RcptTo gives it) was asked for. */
  isAllowed(domain: string): boolean {
    return this.#domains.has(domain.toLowerCase());
  }

  async begin(mail: MailFrom, session: SessionInfo): Promise<SinkTransaction | Reply> {
    const inner = await this.#inner.begin(mail, session);
    if ("code" in inner) return inner;
    return new AllowedDomainsTransaction(inner, this);
  }

  /** @internal Logs one refusal. */
  refuse(rcpt: RcptTo, txId: string): Reply {
    this.#log.warn("rcpt_foreign_refused", { tx: txId, rcpt: rcpt.address, domain: rcpt.domain });
    return FOREIGN_RECIPIENT_REPLY;
  }
}

/**
 * A `%`-hack, `!`-path or quoted `@` in the local part names another host: the local MTA
 * (Postfix: `allow_percent_hack`, `swap_bangpath`, and it trusts 127.0.0.1) would relay it.
 * Refused like a foreign domain, as the provider's MX does (docs/protocol.md §6.3).
 */
function hasRoutingLocalPart(address: string): boolean {
  const at = address.lastIndexOf("@");
  return /[%!@]/.test(at < 0 ? address : address.slice(0, at));
}

class AllowedDomainsTransaction extends ForwardingTransaction {
  readonly #policy: AllowedDomainsSink;

  constructor(inner: SinkTransaction, policy: AllowedDomainsSink) {
    super(inner);
    this.#policy = policy;
  }

  override addRecipient(rcpt: RcptTo, ahead?: RcptAhead): Promise<Reply> {
    if (!this.#policy.isAllowed(rcpt.domain) || hasRoutingLocalPart(rcpt.address)) {
      return Promise.resolve(this.#policy.refuse(rcpt, this.id));
    }
    return super.addRecipient(rcpt, ahead);
  }
}
