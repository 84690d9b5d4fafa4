/**
 * The customer's client link to its local mail system, as the local SMTP/LMTP sink uses it:
 * replies as they go upstream (a lost link, the local 421 included, is
 * `LOCAL_REPLIES.unavailable`, never a 421 the provider would read as the customer closing), and
 * the sink's deadlines.
 */
import type { Conn } from "../../net/conn.ts";
import { LineReader } from "../../wire/line_reader.ts";
import { isPermanent, isPositive, isTransient, reply } from "../../wire/reply.ts";
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
  /** A UTF-8 envelope for a local server without SMTPUTF8 (RFC 6531 §3.4, as the drain's). */
  needsSmtpUtf8: reply(
    553,
    "5.6.7",
    "Local mail system does not accept internationalized mail (no SMTPUTF8)",
  ),
  /** 8-bit content for a local server without 8BITMIME (RFC 6152 §3, as the drain's). */
  needs8BitMime: reply(
    554,
    "5.6.3",
    "Local mail system does not accept 8-bit content (no 8BITMIME)",
  ),
} as const satisfies Record<string, Reply>;

/**
 * A local reply that has no place where it came (a 3xx to MAIL, RCPT or after the body): the
 * local server is out of step, so the link is dropped and the provider keeps the mail.
 */
export function isOutOfPlace(r: Reply): boolean {
  return !isPositive(r) && !isTransient(r) && !isPermanent(r);
}

/**
 * A reply to MAIL that speaks of the local server's state, not of this message: out of place,
 * or 503 (bad sequence). MAIL goes out only between transactions, so a 503 means the server
 * still holds an envelope: Postfix keeps a message's after its end-of-data restrictions refused
 * it ("503 5.5.1 Error: nested MAIL command") when the next MAIL came pipelined with the ".".
 * Passed up, that 503 would fail (and bounce) a message nobody refused.
 */
export function isMailOutOfStep(r: Reply): boolean {
  return isOutOfPlace(r) || r.code === 503;
}

/** The largest body buffer kept for the next transaction (`LocalConnection.buffer`). */
export const MAX_SPARE_BUFFER_BYTES = 64 * 1024;

/** What a local transaction needs to know of its sink. */
export interface LocalSinkView {
  readonly isLmtp: boolean;
  /** The target, for logs. */
  readonly where: string;
  readonly timeouts: LocalTimeouts;
  /** RCPTs answered 452 because of the one-recipient LMTP rule. */
  splitRecipients: number;
  /** The open connection, or a new one after the last broke, or why there is none. */
  connection(): Promise<LocalConnection | Reply>;
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
   * The last held buffer once its write was flushed (the socket is done with it): the next
   * transaction's body goes into it (`buffer`) instead of a new one, which cost ~6 µs a message
   * (zeroed memory and its accounting; measured for #13). At most one, of at most
   * MAX_SPARE_BUFFER_BYTES.
   */
  #spare: Uint8Array | undefined;

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

  /** Command lines as one write, behind any bytes kept by `hold`; false once the link is lost. */
  writeLines(lines: readonly string[], timeoutMs: number): Promise<boolean> {
    const held = this.#held;
    this.#held = undefined;
    if (held === undefined) return this.link.writeLines(lines, timeoutMs);
    const end = this.link.lineRecords ? -1 : putAsciiLines(lines, held.buffer, held.length);
    if (end >= 0) return this.#writeHeld(held.buffer, end, timeoutMs);
    const body = held.buffer.subarray(0, held.length);
    return this.link.writeGroup([body, ...encodeLines(lines)], timeoutMs);
  }

  /**
   * A buffer of at least `bytes` for a transaction's body: the spare one when it is large
   * enough, else a new one. The transaction hands it back through `hold`.
   */
  buffer(bytes: number): Uint8Array {
    const spare = this.#spare;
    if (spare === undefined || spare.length < bytes) return new Uint8Array(bytes);
    this.#spare = undefined;
    return spare;
  }

  /** The first `length` bytes of a held buffer, flushed; then the buffer is the spare one. */
  #writeHeld(buffer: Uint8Array, length: number, timeoutMs: number): Promise<boolean> {
    return this.link.writeEach([buffer.subarray(0, length)], timeoutMs, { flushed: true })
      .then((isWritten) => {
        if (isWritten && buffer.length <= MAX_SPARE_BUFFER_BYTES) this.#spare = buffer;
        return isWritten;
      });
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
        if (held !== undefined) await this.#writeHeld(held.buffer, held.length, timeoutMs);
      }
      return upstreamReply(await this.link.read(timeoutMs));
    });
    this.#reads = next.catch(() => {});
    return next;
  }

  /** Resolves once every reply asked for was read (before QUIT). */
  async idle(): Promise<void> {
    await this.#reads;
  }

  breakLink(reason: string): void {
    this.link.lose(LOCAL_REPLIES.unavailable, reason);
  }
}

/**
 * A local reply as it goes upstream: a lost link is an ordinary temporary refusal, and a 2xx,
 * 4xx or 5xx without an enhanced code gets its class's `X.0.0` (RFC 3463 §3.1): the customer's
 * receiver offers ENHANCEDSTATUSCODES, so its replies carry one (RFC 2034 §3).
 */
function upstreamReply(answer: Answer): Reply {
  if (answer.kind !== "reply") return LOCAL_REPLIES.unavailable;
  const r = answer.reply;
  if (r.enhanced !== undefined || isOutOfPlace(r)) return r;
  return { ...r, enhanced: `${Math.floor(r.code / 100)}.0.0` };
}
