/**
 * The customer's client link to its local mail system, as the local SMTP/LMTP sink uses it:
 * replies as they go upstream (a lost link, the local 421 included, is
 * `LOCAL_REPLIES.unavailable`, never a 421 the provider would read as the customer closing), and
 * the sink's deadlines.
 */
import type { Conn } from "../../net/conn.ts";
import { LineReader } from "../../wire/line_reader.ts";
import { reply } from "../../wire/reply.ts";
import type { Reply } from "../../wire/reply.ts";
import type { Capabilities } from "../../wire/ehlo.ts";
import { type Answer, ClientLink, encodeLines } from "../client/link.ts";
import { putAsciiLines } from "../../wire/bytes.ts";
import { setImmediate } from "node:timers";
import type { Logger } from "../../observe/log.ts";

/** Deadlines of the local client role (RFC 5321 §4.5.3.2 minimums by default). */
export interface LocalTimeouts {
  readonly connectMs: number;
  readonly commandMs: number;
  /** Per body write. */
  readonly dataBlockMs: number;
  readonly dataFinalMs: number;
}

export const DEFAULT_LOCAL_TIMEOUTS: LocalTimeouts = {
  connectMs: 30_000,
  commandMs: 5 * 60_000,
  dataBlockMs: 3 * 60_000,
  dataFinalMs: 10 * 60_000,
};

/**
 * The replies the local hand-off makes up itself. `unavailable`: the local side could not be
 * reached or broke (temporary: the provider keeps the mail). `oneRecipientPerTransaction`: LMTP
 * takes one recipient per transaction here (RFC 5321 §4.5.3.1.10: the client retries the rest).
 */
export const LOCAL_REPLIES = {
  unavailable: reply(451, "4.3.0", "Local delivery unavailable, try again later"),
  oneRecipientPerTransaction: reply(
    452,
    "4.5.3",
    "One recipient per transaction, send the others again",
  ),
} as const satisfies Record<string, Reply>;

/** What a local transaction needs to know of its sink. */
export interface LocalSinkView {
  readonly isLmtp: boolean;
  /** The target, for logs. */
  readonly where: string;
  readonly timeouts: LocalTimeouts;
  /** RCPTs answered 452 because of the one-recipient LMTP rule. */
  splitRecipients: number;
}

/**
 * One open connection to the local MTA after a successful EHLO/LHLO, on the client link.
 * Whatever ends the link (the local side's 421 included) is `LOCAL_REPLIES.unavailable`
 * upstream: the provider must not read a local 421 as the customer closing its own connection.
 */
export class LocalConnection {
  readonly link: ClientLink;
  caps: Capabilities | undefined;
  /**
   * The last read asked for: each read starts after it, so replies are taken in the order the
   * commands went out even while a final reply is still awaited (`finishLater`: "." and the
   * next MAIL/RCPT/DATA are on the wire together).
   */
  #reads: Promise<unknown> = Promise.resolve();
  /**
   * A body's last bytes, its end marker included, kept to go out with the next command: the
   * first `length` bytes of `buffer`, whose rest is room for those command lines.
   */
  #held: { readonly buffer: Uint8Array; readonly length: number } | undefined;
  /**
   * A body that waits for its `354` (an envelope sent ahead, see `LocalTransaction`): command
   * lines written after it wait until it went out (or was dropped), so the wire keeps the order
   * in which the receiver handed the commands on.
   */
  #bodyFirst: Promise<void> | undefined;
  /** Envelopes sent ahead whose replies are not all read yet, oldest first. */
  readonly #ahead: Promise<void>[] = [];

  constructor(conn: Conn, log: Logger) {
    this.link = new ClientLink({ conn, reader: new LineReader(conn), log });
  }

  get isBroken(): boolean {
    return this.link.isLost;
  }

  /** Writes one command line and reads its reply (after every reply still awaited). */
  async command(line: string, timeoutMs: number): Promise<Reply> {
    if (!(await this.writeLines([line], timeoutMs))) return LOCAL_REPLIES.unavailable;
    return await this.read(timeoutMs);
  }

  /**
   * Keeps a body's last bytes (its end marker included) to go out in one write with the next
   * command lines (local PIPELINING only): the server then answers "." and the next
   * MAIL/RCPT/DATA at once. Two small writes cost more than a round trip: a server that
   * answers the "." first and then, Nagle on, holds its next replies until that one is
   * acknowledged (Postfix's smtp-sink does) stalls for our delayed ACK. A read that finds the
   * bytes still kept once the current turn of the event loop is over writes them alone.
   * The link takes `buffer`: its first `length` bytes go out, and the command lines are put
   * in the room after them when they fit (one write without a copy of the body).
   */
  hold(buffer: Uint8Array, length: number): void {
    this.#held = { buffer, length };
  }

  /**
   * Command lines as one write, behind any bytes kept by `hold` and after a body still waiting
   * for its 354 (`bodyFirst`); false once the link is lost.
   */
  writeLines(lines: readonly string[], timeoutMs: number): Promise<boolean> {
    // Only the body queued before this call: a later one waits for these lines itself.
    const first = this.#bodyFirst;
    if (first !== undefined) return first.then(() => this.#writeNow(lines, timeoutMs));
    return this.#writeNow(lines, timeoutMs);
  }

  /** Writes one command line now, even before a body waiting in `bodyFirst`, and reads its reply. */
  async commandNow(line: string, timeoutMs: number): Promise<Reply> {
    if (!(await this.#writeNow([line], timeoutMs))) return LOCAL_REPLIES.unavailable;
    return await this.read(timeoutMs);
  }

  /**
   * Command lines written after this call wait for `done` (a body that goes out once its 354
   * came, or is dropped). `done` never rejects.
   */
  bodyFirst(done: Promise<void>): void {
    this.#bodyFirst = done;
    done.then(() => {
      if (this.#bodyFirst === done) this.#bodyFirst = undefined;
    });
  }

  /** Whether MAX_AHEAD envelopes already wait for their replies (`sendsAhead`). */
  get isAheadFull(): boolean {
    return this.#ahead.length >= MAX_AHEAD;
  }

  /** Resolves once fewer than MAX_AHEAD envelopes wait for their replies. */
  async roomAhead(): Promise<void> {
    // Bounded: each round waits for the oldest, which leaves the list when settled.
    while (this.#ahead.length >= MAX_AHEAD) await this.#ahead[0];
  }

  /** Counts an envelope sent ahead until `settled` (never rejects) resolves. */
  sendsAhead(settled: Promise<void>): void {
    this.#ahead.push(settled);
    settled.then(() => {
      const i = this.#ahead.indexOf(settled);
      if (i >= 0) this.#ahead.splice(i, 1);
    });
  }

  #writeNow(lines: readonly string[], timeoutMs: number): Promise<boolean> {
    const held = this.#held;
    this.#held = undefined;
    if (held === undefined) return this.link.writeLines(lines, timeoutMs);
    const end = this.link.lineRecords ? -1 : putAsciiLines(lines, held.buffer, held.length);
    if (end >= 0) return this.link.writeEach([held.buffer.subarray(0, end)], timeoutMs);
    const body = held.buffer.subarray(0, held.length);
    return this.link.writeGroup([body, ...encodeLines(lines)], timeoutMs);
  }

  /**
   * Writes each buffer as it is, in order; each write resolves once the socket is done with
   * its bytes (the caller reuses the buffer). False once the link is lost.
   */
  writeAll(buffers: readonly Uint8Array[], timeoutMs: number): Promise<boolean> {
    return this.link.writeEach(buffers, timeoutMs, { flushed: true });
  }

  /** The next reply, once every reply asked for before it was read. */
  read(timeoutMs: number): Promise<Reply> {
    const next = this.#reads.then(async () => {
      if (this.#held !== undefined) {
        // The receiver relays the client's next, already received, commands in this turn.
        await new Promise((resolve) => setImmediate(resolve));
        const held = this.#held;
        this.#held = undefined;
        // A failed write loses the link: the read below then answers without I/O.
        if (held !== undefined) {
          const body = held.buffer.subarray(0, held.length);
          await this.link.writeEach([body], timeoutMs, { flushed: true });
        }
      }
      return upstreamReply(await this.link.read(timeoutMs));
    });
    this.#reads = next.catch(() => {});
    return next;
  }

  /** Resolves once every body went out and every reply asked for was read (before QUIT). */
  async idle(): Promise<void> {
    // Bounded: a body or envelope waiting settles once its replies are read or the link is lost.
    for (let i = 0; i < 1000 && (this.#bodyFirst !== undefined || this.#ahead.length > 0); i++) {
      await this.#bodyFirst;
      await Promise.all(this.#ahead);
    }
    await this.#reads;
  }

  breakLink(reason: string): void {
    this.link.lose(LOCAL_REPLIES.unavailable, reason);
  }
}

/**
 * Envelopes sent ahead of their replies at most (`LocalTransaction`): the receiver goes on with
 * the next messages while the local server answers, each holding its body (one buffer of about
 * its SIZE=, or LOCAL_WRITE_BYTES) until its 354. Two keep the next body and envelope ready when
 * a 354 comes; more would only hold more bodies.
 */
export const MAX_AHEAD = 2;

/** A local reply as it goes upstream: a lost link is an ordinary temporary refusal. */
function upstreamReply(answer: Answer): Reply {
  return answer.kind === "reply" ? answer.reply : LOCAL_REPLIES.unavailable;
}
