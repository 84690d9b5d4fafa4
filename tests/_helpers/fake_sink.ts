/**
 * A MessageSink for session tests: records every call and every body byte, and can be told
 * to reject or to throw at a given call.
 */
import type {
  MailFrom,
  MessageSink,
  RcptTo,
  SessionInfo,
  SinkTransaction,
} from "../../src/smtp/sink.ts";
import type { Reply } from "../../src/wire/reply.ts";
import { reply } from "../../src/wire/reply.ts";
import { concatBytes } from "../../src/wire/bytes.ts";

/** One transaction as the fake saw it. */
export interface FakeTransaction {
  readonly id: string;
  readonly mail: MailFrom;
  readonly session: SessionInfo;
  readonly recipients: RcptTo[];
  /** For each RCPT (refused ones too): whether the receiver said DATA is next. */
  readonly dataFollows: boolean[];
  readonly chunks: Uint8Array[];
  finished: boolean;
  aborted: number;
  /** The body as written, concatenated. */
  body(): Uint8Array;
}

/** Behaviour switches. */
export interface FakeSinkOptions {
  /** Reply to MAIL instead of a transaction. */
  rejectMail?: Reply;
  /** Decides each recipient; default 250 2.1.5. */
  decideRecipient?: (rcpt: RcptTo) => Reply;
  /** Reply at end of data; default 250 2.6.0 Queued as <id>. */
  finishReply?: Reply;
  /**
   * Offer one reply per accepted recipient (PRDR): `finishEach` answers each with this
   * function; absent, the transactions have no `finishEach`.
   */
  replyEach?: (rcpt: RcptTo) => Reply;
  /** Throw from this call (a sink bug). */
  throwAt?: "begin" | "addRecipient" | "write" | "finish";
}

/** A recording MessageSink. */
export class FakeSink implements MessageSink {
  readonly transactions: FakeTransaction[] = [];
  readonly options: FakeSinkOptions;
  #next = 1;

  constructor(options: FakeSinkOptions = {}) {
    this.options = options;
  }

  /** Transactions that reached `finish()` with a 2xx. */
  get accepted(): FakeTransaction[] {
    return this.transactions.filter((t) => t.finished);
  }

  begin(mail: MailFrom, session: SessionInfo): Promise<SinkTransaction | Reply> {
    if (this.options.throwAt === "begin") return Promise.reject(new Error("sink bug: begin"));
    if (this.options.rejectMail) return Promise.resolve(this.options.rejectMail);
    const rec: FakeTransaction = {
      id: `T${this.#next++}`,
      mail,
      session,
      recipients: [],
      dataFollows: [],
      chunks: [],
      finished: false,
      aborted: 0,
      body() {
        return concatBytes(this.chunks);
      },
    };
    this.transactions.push(rec);
    const opts = this.options;
    const tx: SinkTransaction = {
      id: rec.id,
      addRecipient(rcpt, ahead) {
        rec.dataFollows.push(ahead?.dataFollows ?? false);
        if (opts.throwAt === "addRecipient") return Promise.reject(new Error("sink bug: rcpt"));
        const r = opts.decideRecipient?.(rcpt) ?? reply(250, "2.1.5", "OK");
        if (r.code >= 200 && r.code < 300) rec.recipients.push(rcpt);
        return Promise.resolve(r);
      },
      write(chunk) {
        if (opts.throwAt === "write") return Promise.reject(new Error("sink bug: write"));
        rec.chunks.push(chunk.slice());
        return Promise.resolve();
      },
      finish() {
        if (opts.throwAt === "finish") return Promise.reject(new Error("sink bug: finish"));
        const r = opts.finishReply ?? reply(250, "2.6.0", `Queued as ${rec.id}`);
        if (r.code >= 200 && r.code < 300) rec.finished = true;
        return Promise.resolve(r);
      },
      abort() {
        rec.aborted++;
        return Promise.resolve();
      },
    };
    const replyEach = opts.replyEach;
    if (replyEach === undefined) return Promise.resolve(tx);
    const finishEach = () => {
      const replies = rec.recipients.map((r) => replyEach(r));
      if (replies.some((r) => r.code >= 200 && r.code < 300)) rec.finished = true;
      return Promise.resolve(replies);
    };
    return Promise.resolve({ ...tx, finishEach });
  }
}

/** A FakeSink that refuses with `refusal` the recipients `isRefused` picks, and takes the rest. */
export function refusingSink(isRefused: (address: string) => boolean, refusal: Reply): FakeSink {
  return new FakeSink({
    decideRecipient: (r) => isRefused(r.address) ? refusal : reply(250, "2.1.5", "OK"),
  });
}
