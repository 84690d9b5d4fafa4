/**
 * The base of a sink wrapper's transaction: every call goes to the inner transaction,
 * `finishEach` (PRDR) and `finishLater` too when the inner one has them. A wrapper overrides
 * only what it refuses or watches and calls `super` for the rest.
 */
import type { RcptAhead, RcptTo, SinkTransaction } from "../sink.ts";
import type { Reply } from "../../wire/reply.ts";

/** Passes one transaction through to `inner`. */
export class ForwardingTransaction implements SinkTransaction {
  readonly #inner: SinkTransaction;
  /** Passed on when the inner sink has it (PRDR). */
  readonly finishEach?: () => Promise<readonly Reply[]>;
  /** Passed on when the inner sink has it (the end of a body pipelined with what follows). */
  readonly finishLater?: () => Promise<{ readonly reply: Promise<Reply> }>;

  constructor(inner: SinkTransaction) {
    this.#inner = inner;
    const each = inner.finishEach?.bind(inner);
    if (each !== undefined) this.finishEach = each;
    const later = inner.finishLater?.bind(inner);
    if (later !== undefined) this.finishLater = later;
  }

  get id(): string {
    return this.#inner.id;
  }

  addRecipient(rcpt: RcptTo, ahead?: RcptAhead): Promise<Reply> {
    return this.#inner.addRecipient(rcpt, ahead);
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.#inner.write(chunk);
  }

  finish(): Promise<Reply> {
    return this.#inner.finish();
  }

  abort(): Promise<void> {
    return this.#inner.abort();
  }
}
