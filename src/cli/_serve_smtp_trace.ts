/**
 * The MX's message trace: wraps the queue sink of one connection and logs one `queued` line
 * per accepted message (id, client, helo, tls, from, every to, size) and one `refused` line
 * per refusal with the client and the reply, the way operators grep Postfix's log. Also tells
 * shutdown whether the session is inside a transaction (busy) or between them (idle).
 * Refusals are peer facts: logged at info, never error. The `queued` line is written once the
 * 250 went out (`afterReplies`), not before it: formatting it held every message's 250 back
 * ~40 µs (#13, a lone sender waits for each).
 */
import type { Logger } from "../observe/log.ts";
import type { MailFrom, MessageSink, RcptTo, SessionInfo, SinkTransaction } from "../smtp/sink.ts";
import type { MessageRefuseLabel, RcptRejectLabel, SmtpEvents } from "../smtp/events.ts";
import type { Reply } from "../wire/reply.ts";
import { formatReplyText, isPositive } from "../wire/reply.ts";

/** A MessageSink that logs what happens to each message of one connection. */
export class TracedSink implements MessageSink {
  readonly #inner: MessageSink;
  readonly #log: Logger;
  #openTransactions = 0;
  readonly #client: string;
  #helo: string | undefined;
  /** `queued` lines of messages whose 250 is not out yet (one, unless pipelined). */
  readonly #unwritten: (() => void)[] = [];

  constructor(inner: MessageSink, opts: { log: Logger; client: string }) {
    this.#inner = inner;
    this.#log = opts.log;
    this.#client = opts.client;
  }

  /** Writes the `queued` lines held for the replies just sent (or for the session's end). */
  afterReplies(): void {
    const lines = this.#unwritten;
    for (let i = 0; i < lines.length; i++) lines[i]!();
    lines.length = 0;
  }

  /** True between MAIL and the end of that transaction (250, refusal, RSET or loss). */
  get isInTransaction(): boolean {
    return this.#openTransactions > 0;
  }

  async begin(mail: MailFrom, session: SessionInfo): Promise<SinkTransaction | Reply> {
    this.#helo = session.heloName;
    const tx = await this.#inner.begin(mail, session);
    if (isReply(tx)) {
      this.#log.info("refused", {
        client: this.#client,
        helo: session.heloName,
        from: mail.address,
        stage: "mail",
        reply: replyText(tx),
      });
      return tx;
    }
    this.#openTransactions++;
    return new TracedTransaction(tx, {
      log: this.#log,
      client: this.#client,
      mail,
      session,
      close: this.#closeTransaction,
      afterReply: this.#afterReply,
    });
  }

  readonly #closeTransaction = (): void => {
    this.#openTransactions--;
  };

  readonly #afterReply = (line: () => void): void => {
    this.#unwritten.push(line);
  };

  /**
   * SmtpEvents for the receiver's own refusals (recipient limit, size, content), logged with
   * the client; counts still go to `inner`. The queue sink's refusals are logged in begin().
   */
  receiverEvents(inner: SmtpEvents | undefined): SmtpEvents {
    const refused = (stage: string, reason: string) => {
      this.#log.info("refused", { client: this.#client, helo: this.#helo, stage, reason });
    };
    return {
      messageQueued: (e) => inner?.messageQueued(e),
      rcptRejected: (reason: RcptRejectLabel) => {
        refused("rcpt", reason);
        inner?.rcptRejected(reason);
      },
      messageRefused: (reason: MessageRefuseLabel) => {
        refused("data", reason);
        inner?.messageRefused(reason);
      },
    };
  }
}

/** What a TracedTransaction logs with, and how it tells its sink that it ended. */
interface TraceContext {
  readonly log: Logger;
  readonly client: string;
  readonly mail: MailFrom;
  readonly session: SessionInfo;
  /** Called once, when the transaction ends (finished, refused, aborted). */
  readonly close: () => void;
  /** Holds a log line until the reply went out (TracedSink.afterReplies). */
  readonly afterReply: (line: () => void) => void;
}

/**
 * One transaction of a TracedSink: the inner transaction's calls, the recipients it accepted
 * and the body's size for the `queued` line (an object of its own, not closures per message).
 */
class TracedTransaction implements SinkTransaction {
  readonly id: string;
  readonly #tx: SinkTransaction;
  readonly #trace: TraceContext;
  readonly #to: string[] = [];
  #size = 0;
  #isOpen = true;

  constructor(tx: SinkTransaction, trace: TraceContext) {
    this.id = tx.id;
    this.#tx = tx;
    this.#trace = trace;
  }

  async addRecipient(rcpt: RcptTo): Promise<Reply> {
    const r = await this.#tx.addRecipient(rcpt);
    if (isPositive(r)) this.#to.push(rcpt.address);
    else {
      this.#trace.log.info("refused", {
        ...this.#base(),
        id: this.id,
        stage: "rcpt",
        to: rcpt.address,
        reply: replyText(r),
      });
    }
    return r;
  }

  // The sink's own promise, not an async frame around it for every body chunk.
  write(chunk: Uint8Array): Promise<void> {
    this.#size += chunk.byteLength;
    return this.#tx.write(chunk);
  }

  async finish(): Promise<Reply> {
    try {
      const r = await this.#tx.finish();
      const { log, client, mail, session } = this.#trace;
      if (isPositive(r)) {
        this.#trace.afterReply(() =>
          log.info("queued", {
            id: this.id,
            client,
            helo: session.heloName,
            tls: session.isSecure,
            from: mail.address,
            to: this.#to,
            size: this.#size,
          })
        );
      } else {
        log.info("refused", {
          ...this.#base(),
          id: this.id,
          stage: "data",
          to: this.#to,
          reply: replyText(r),
        });
      }
      return r;
    } finally {
      this.#close();
    }
  }

  async abort(): Promise<void> {
    try {
      await this.#tx.abort();
    } finally {
      this.#close();
    }
  }

  /** The fields every `refused` line of this transaction starts with. */
  #base(): { client: string; helo: string; from: string } {
    const { client, session, mail } = this.#trace;
    return { client, helo: session.heloName, from: mail.address };
  }

  #close(): void {
    if (!this.#isOpen) return;
    this.#isOpen = false;
    this.#trace.close();
  }
}

function isReply(v: SinkTransaction | Reply): v is Reply {
  return "code" in v;
}

function replyText(r: Reply): string {
  return formatReplyText(r).trimEnd().replaceAll("\r\n", " ");
}
