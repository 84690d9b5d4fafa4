/**
 * The MX's message trace: wraps the queue sink of one connection and logs one `queued` line
 * per accepted message (id, client, helo, tls, from, every to, size) and one `refused` line
 * per refusal with the client and the reply, the way operators grep Postfix's log. Also tells
 * shutdown whether the session is inside a transaction (busy) or between them (idle).
 * Refusals are peer facts: logged at info, never error.
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

  constructor(inner: MessageSink, opts: { log: Logger; client: string }) {
    this.#inner = inner;
    this.#log = opts.log;
    this.#client = opts.client;
  }

  /** True between MAIL and the end of that transaction (250, refusal, RSET or loss). */
  get isInTransaction(): boolean {
    return this.#openTransactions > 0;
  }

  async begin(mail: MailFrom, session: SessionInfo): Promise<SinkTransaction | Reply> {
    this.#helo = session.heloName;
    const base = { client: this.#client, helo: session.heloName, from: mail.address };
    const tx = await this.#inner.begin(mail, session);
    if (isReply(tx)) {
      this.#log.info("refused", { ...base, stage: "mail", reply: replyText(tx) });
      return tx;
    }
    this.#openTransactions++;
    const to: string[] = [];
    let size = 0;
    let isOpen = true;
    const close = () => {
      if (!isOpen) return;
      isOpen = false;
      this.#openTransactions--;
    };
    const log = this.#log;
    return {
      id: tx.id,
      async addRecipient(rcpt: RcptTo): Promise<Reply> {
        const r = await tx.addRecipient(rcpt);
        if (isPositive(r)) to.push(rcpt.address);
        else {
          log.info("refused", {
            ...base,
            id: tx.id,
            stage: "rcpt",
            to: rcpt.address,
            reply: replyText(r),
          });
        }
        return r;
      },
      // The sink's own promise, not an async frame around it for every body chunk.
      write(chunk: Uint8Array): Promise<void> {
        size += chunk.byteLength;
        return tx.write(chunk);
      },
      async finish(): Promise<Reply> {
        try {
          const r = await tx.finish();
          if (isPositive(r)) {
            log.info("queued", {
              id: tx.id,
              client: base.client,
              helo: session.heloName,
              tls: session.isSecure,
              from: mail.address,
              to,
              size,
            });
          } else {
            log.info("refused", { ...base, id: tx.id, stage: "data", to, reply: replyText(r) });
          }
          return r;
        } finally {
          close();
        }
      },
      async abort(): Promise<void> {
        try {
          await tx.abort();
        } finally {
          close();
        }
      },
    };
  }

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

function isReply(v: SinkTransaction | Reply): v is Reply {
  return "code" in v;
}

function replyText(r: Reply): string {
  return formatReplyText(r).trimEnd().replaceAll("\r\n", " ");
}
