/**
 * A MessageSink wrapper that counts and logs what happened to each recipient the provider
 * offered after ATRN: delivered where, deferred, failed, refused as foreign, or split off
 * (LMTP one-recipient rule), or refused by our own receiver (size, content: `receiverEvents`).
 * It changes no reply; it only watches them.
 */
import type {
  MailFrom,
  MessageSink,
  RcptAhead,
  RcptTo,
  SessionInfo,
  SinkTransaction,
} from "../smtp/sink.ts";
import type { Reply } from "../wire/reply.ts";
import { isPermanent, isPositive, isTransient } from "../wire/reply.ts";
import type { Logger } from "../observe/log.ts";
import type { MessageRefuseLabel, SmtpEvents } from "../smtp/events.ts";
import { FOREIGN_RECIPIENT_REPLY } from "../smtp/sinks/allowed_domains.ts";
import { LOCAL_REPLIES } from "../smtp/sinks/local_smtp.ts";
import { ProviderIdSniffer } from "./_customer_provider_id.ts";

/** Recipient counts of one session. */
export interface LedgerCounts {
  messages: number;
  delivered: number;
  /** Refused temporarily by the local side (4xx): the provider keeps them. */
  deferred: number;
  /** Refused permanently by the local side (5xx): the provider bounces them. */
  failed: number;
  /** Outside the ATRN domains (550 5.7.1). */
  foreign: number;
  /** Answered 452 by the LMTP one-recipient rule: waiting for the next transaction. */
  split: number;
}

/** Counts of a session that has seen nothing yet (a new object: a LedgerSink adds to it). */
export function noCounts(): LedgerCounts {
  return { messages: 0, delivered: 0, deferred: 0, failed: 0, foreign: 0, split: 0 };
}

/** During a long drain, a progress line at most this often. */
const PROGRESS_EVERY_MS = 10_000;

/** Counts outcomes of the inner sink. */
export class LedgerSink implements MessageSink {
  readonly counts: LedgerCounts = noCounts();
  readonly #inner: MessageSink;
  readonly #log: Logger;
  readonly #where: string;
  /** Whether info lines are written: a delivered message's line is only built then. */
  readonly #isInfo: boolean;
  /** When the next progress line may be written (a long drain says how far it is). */
  #progressAt = Date.now() + PROGRESS_EVERY_MS;
  /** The transaction the receiver is in (from MAIL to its end of data or abort), if any. */
  #open: LedgerTransaction | undefined;

  constructor(inner: MessageSink, where: string, log: Logger) {
    this.#inner = inner;
    this.#where = where;
    this.#log = log;
    this.#isInfo = log.isEnabled?.("info") ?? true;
  }

  async begin(mail: MailFrom, session: SessionInfo): Promise<SinkTransaction | Reply> {
    const r = await this.#inner.begin(mail, session);
    if ("code" in r) {
      this.#log.warn("mail_refused", { from: mail.address, code: r.code, local: this.#where });
      if (isTransient(r) && r.code !== 421) this.counts.deferred++;
      return r;
    }
    const tx = new LedgerTransaction(r, mail, this);
    this.#open = tx;
    return tx;
  }

  /** @internal The receiver is done with `tx` (its end of data, or its abort). */
  left(tx: LedgerTransaction): void {
    if (this.#open === tx) this.#open = undefined;
  }

  /**
   * SmtpEvents for the receiver's own refusals of a message (over its size limit, a bare CR or
   * LF, an over-long line): the local side never sees it and the provider bounces it, so it is
   * logged here (`refused`, as the MX names its own) and its recipients count as failed. The
   * open transaction gives the sender and recipients; a SIZE= over the limit comes at MAIL,
   * before one is open.
   */
  receiverEvents(): SmtpEvents {
    return {
      messageQueued: () => {},
      rcptRejected: () => {},
      messageRefused: (reason) => this.#refusedByReceiver(reason),
    };
  }

  #refusedByReceiver(reason: MessageRefuseLabel): void {
    const tx = this.#open;
    this.counts.messages++;
    this.counts.failed += tx?.recipients.length ?? 0;
    this.#log.warn("refused", {
      stage: tx === undefined ? "mail" : "data",
      reason,
      ...(tx === undefined ? {} : tx.logFields()),
    });
  }

  /** @internal */
  record(kind: "rcpt" | "final", r: Reply, recipients: number): void {
    if (kind === "rcpt" && r === FOREIGN_RECIPIENT_REPLY) this.counts.foreign += recipients;
    else if (kind === "rcpt" && r === LOCAL_REPLIES.oneRecipientPerTransaction) {
      this.counts.split += recipients;
    } else if (isPositive(r)) this.counts.delivered += recipients;
    else if (isPermanent(r)) this.counts.failed += recipients;
    else this.counts.deferred += recipients;
  }

  /** @internal One message ended (delivered or not). */
  countMessage(): void {
    this.counts.messages++;
  }

  /** @internal */
  logFinal(info: {
    tx: string;
    from: string;
    recipients: readonly string[];
    reply: Reply;
    providerId: string | undefined;
  }): void {
    // One line per message: what the local side answered (its refusal is a warning, not ours
    // to call an error), with every recipient as its own to=.
    const fields = {
      tx: info.tx,
      providerId: info.providerId,
      from: info.from,
      to: info.recipients,
      local: this.#where,
      code: info.reply.code,
      reply: info.reply.lines.join(" "),
    };
    if (isPositive(info.reply)) this.#log.info("delivered", fields);
    else this.#log.warn(isPermanent(info.reply) ? "failed" : "deferred", fields);
  }

  /**
   * @internal Whether `logFinal` writes a line for a message answered `r` (a delivered one's is
   * info): its fields are only gathered then.
   */
  logsFinal(r: Reply): boolean {
    return this.#isInfo || !isPositive(r);
  }

  /** @internal After a message: a progress line at most every PROGRESS_EVERY_MS. */
  progress(): void {
    const now = Date.now();
    if (now >= this.#progressAt) {
      this.#progressAt = now + PROGRESS_EVERY_MS;
      this.#log.info("progress", { ...this.counts });
    }
  }
}

class LedgerTransaction implements SinkTransaction {
  readonly #inner: SinkTransaction;
  readonly #mail: MailFrom;
  readonly #ledger: LedgerSink;
  readonly #accepted: string[] = [];
  readonly #providerId = new ProviderIdSniffer();
  /** PRDR: counted and logged per recipient, when the inner sink answers per recipient. */
  readonly finishEach?: () => Promise<readonly Reply[]>;
  /** Counted and logged once the final reply came, when the inner sink has it. */
  readonly finishLater?: () => Promise<{ readonly reply: Promise<Reply> }>;

  constructor(inner: SinkTransaction, mail: MailFrom, ledger: LedgerSink) {
    this.#inner = inner;
    this.#mail = mail;
    this.#ledger = ledger;
    const each = inner.finishEach?.bind(inner);
    if (each !== undefined) this.finishEach = () => this.#finishEach(each);
    const later = inner.finishLater?.bind(inner);
    if (later !== undefined) {
      this.finishLater = async () => {
        this.#ledger.left(this);
        const { reply } = await later();
        return { reply: reply.then((r) => this.#recordFinal(r)) };
      };
    }
  }

  async #finishEach(each: () => Promise<readonly Reply[]>): Promise<readonly Reply[]> {
    this.#ledger.left(this);
    const replies = await each();
    this.#ledger.countMessage();
    this.#accepted.forEach((recipient, i) => {
      const r = replies[i];
      if (r === undefined) return;
      this.#ledger.record("final", r, 1);
      if (!this.#ledger.logsFinal(r)) return;
      this.#ledger.logFinal({
        tx: this.#inner.id,
        from: this.#mail.address,
        recipients: [recipient],
        reply: r,
        providerId: this.#providerId.id,
      });
    });
    this.#ledger.progress();
    return replies;
  }

  get id(): string {
    return this.#inner.id;
  }

  /** The recipients the local side accepted so far. */
  get recipients(): readonly string[] {
    return this.#accepted;
  }

  /** What a `refused` line says of this message. */
  logFields(): Record<string, unknown> {
    return {
      tx: this.#inner.id,
      providerId: this.#providerId.id,
      from: this.#mail.address,
      to: this.#accepted,
    };
  }

  async addRecipient(rcpt: RcptTo, ahead?: RcptAhead): Promise<Reply> {
    const r = await this.#inner.addRecipient(rcpt, ahead);
    if (isPositive(r)) this.#accepted.push(rcpt.address);
    else this.#ledger.record("rcpt", r, 1);
    return r;
  }

  write(chunk: Uint8Array): Promise<void> {
    this.#providerId.push(chunk);
    return this.#inner.write(chunk);
  }

  async finish(): Promise<Reply> {
    this.#ledger.left(this);
    return this.#recordFinal(await this.#inner.finish());
  }

  /** Counts and logs the message's final reply; returns it. */
  #recordFinal(r: Reply): Reply {
    this.#ledger.countMessage();
    this.#ledger.record("final", r, this.#accepted.length);
    if (this.#ledger.logsFinal(r)) {
      this.#ledger.logFinal({
        tx: this.#inner.id,
        from: this.#mail.address,
        recipients: this.#accepted,
        reply: r,
        providerId: this.#providerId.id,
      });
    }
    this.#ledger.progress();
    return r;
  }

  abort(): Promise<void> {
    this.#ledger.left(this);
    return this.#inner.abort();
  }
}
