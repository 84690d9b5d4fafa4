/**
 * The messages sendMany works through, with room for one taken ahead: under PIPELINING the
 * next message is taken and planned (no I/O) while the current envelope's replies travel, and
 * its MAIL/RCPT/DATA go out right behind the current body's "." (RFC 2920 §3.1: message content
 * may open a group). A source error met while looking ahead is raised after the message in
 * flight is settled.
 */
import type { Planned } from "./_sender_envelope.ts";
import { envelopeLines } from "./_sender_envelope.ts";
import type { Body, Prepared } from "./_sender_check.ts";
import { RecipientLedger } from "./_sender_ledger.ts";
import { closeIterator } from "./_sender_body.ts";
import type { OutboundMessage } from "./_sender_types.ts";

/** A message taken ahead: planned, and maybe already on the wire. */
export interface TakenMessage<M> {
  readonly message: M;
  readonly ledger: RecipientLedger;
  readonly planned: Planned;
  /** The checked body, when `planned` is `send`. */
  readonly body: Body | undefined;
  /** Its MAIL/RCPT/DATA went out behind the previous body. */
  isWritten: boolean;
}

/** The next message to send, and what was prepared for it when it was taken ahead. */
export interface NextMessage<M> {
  readonly message: M;
  readonly taken: TakenMessage<M> | undefined;
}

/** What the transaction in flight sees of the next message. */
export interface Lookahead {
  /** Takes, plans and checks the next message (no I/O), while replies are awaited. Never rejects. */
  prepare(): Promise<void>;
  /** The prepared message's MAIL/RCPT/DATA, to write right behind "."; marks them written. */
  follow(): Uint8Array[];
}

/** A message iterator with a one-message lookahead. */
export class MessageSource<M extends OutboundMessage> implements Lookahead {
  readonly #iterator: Iterator<M> | AsyncIterator<M>;
  /** Plans and checks a message taken ahead; undefined: no lookahead (no PIPELINING). */
  readonly #prepare: ((message: M, ledger: RecipientLedger) => Promise<Prepared>) | undefined;
  #ahead: TakenMessage<M> | undefined;
  #isExhausted = false;
  #sourceError: { readonly error: unknown } | undefined;

  constructor(
    messages: AsyncIterable<M> | Iterable<M>,
    prepare: ((message: M, ledger: RecipientLedger) => Promise<Prepared>) | undefined,
  ) {
    this.#iterator = Symbol.asyncIterator in messages
      ? messages[Symbol.asyncIterator]()
      : messages[Symbol.iterator]();
    this.#prepare = prepare;
  }

  /** Whether messages are taken ahead (the peer pipelines). */
  get isLookingAhead(): boolean {
    return this.#prepare !== undefined;
  }

  /** A message taken ahead is waiting to be sent (or reported). */
  get hasAhead(): boolean {
    return this.#ahead !== undefined;
  }

  /**
   * The message taken ahead, or the source's next one; undefined at the end, or once the link
   * is lost (a message taken ahead whose envelope is already on the wire is still returned, to
   * be reported deferred; one never offered is left untouched). Throws what the source throws.
   */
  async take(isLinkLost: boolean): Promise<NextMessage<M> | undefined> {
    const taken = this.#ahead;
    if (taken !== undefined) {
      if (!taken.isWritten && isLinkLost) return undefined;
      this.#ahead = undefined;
      return { message: taken.message, taken };
    }
    if (this.#isExhausted || isLinkLost) return undefined;
    const next = await this.#iterator.next();
    if (next.done) {
      this.#isExhausted = true;
      return undefined;
    }
    return { message: next.value, taken: undefined };
  }

  /** Takes, plans and checks the next message (no I/O), while replies are awaited. Never rejects. */
  async prepare(): Promise<void> {
    const prepare = this.#prepare;
    if (prepare === undefined || this.#ahead !== undefined || this.#isExhausted) return;
    let next: IteratorResult<M>;
    try {
      next = await this.#iterator.next();
    } catch (error) {
      // Raised by `throwIfFailed` after the message in flight is settled.
      this.#sourceError = { error };
      this.#isExhausted = true;
      return;
    }
    if (next.done) {
      this.#isExhausted = true;
      return;
    }
    const ledger = new RecipientLedger(next.value.recipients);
    const { planned, body } = await prepare(next.value, ledger);
    this.#ahead = { message: next.value, ledger, planned, body, isWritten: false };
  }

  /** The prepared message's MAIL/RCPT/DATA, to write right behind "."; marks them written. */
  follow(): Uint8Array[] {
    const ahead = this.#ahead;
    if (ahead === undefined || ahead.planned.kind !== "send") return [];
    ahead.isWritten = true;
    return envelopeLines(ahead.planned);
  }

  /** Ends the source early unless it ended. */
  async close(): Promise<void> {
    if (!this.#isExhausted) await closeIterator(this.#iterator);
  }

  /** Raises an error the source threw while looking ahead (after the messages were settled). */
  throwIfFailed(): void {
    if (this.#sourceError !== undefined) throw this.#sourceError.error;
  }
}
