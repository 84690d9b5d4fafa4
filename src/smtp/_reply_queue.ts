/**
 * The replies of the SMTP server role (receiver.ts) not sent yet, and how they go out: held for
 * a pipelined group (RFC 2920 §3.2 allows a flush at any time), in order, each group in one write
 * when all its replies are known, and written before the session waits for the peer (between
 * commands, and before a BDAT chunk's octets: `writeKnown`). A final reply still to come (a sink's
 * `finishLater`, `LaterReply`) is awaited only after the replies before it went out: a known 250
 * for one message must not wait for the next message's slow sink (its client's deadline runs for
 * each reply, and a client that gave up on a message delivered there sends it again).
 */
import type { Conn } from "../net/conn.ts";
import type { Reply } from "../wire/reply.ts";
import { concatBytes } from "../wire/bytes.ts";
import { replyBytes } from "../wire/replies.ts";
import { type Held, knownHead, LaterReply } from "./_receiver_later.ts";

/**
 * Replies held for a pipelined group at most: a peer that keeps input queued and never reads
 * must not grow one write without bound.
 */
export const MAX_HELD_REPLIES = 100;
/**
 * How long replies may be held for a group at most. A peer that keeps input queued while each
 * command waits on a slow sink (fetch behind a slow local MTA, with the provider's window of
 * messages queued) must still hear back in time: its deadline runs for each reply.
 */
export const MAX_HOLD_MS = 200;

export type FlushOptions = { readonly untilSent?: boolean; readonly timeoutMs?: number };

const DONE: Promise<void> = Promise.resolve();

/** One session's replies not sent yet. */
export class ReplyQueue {
  readonly #conn: Conn;
  /**
   * The first #count slots; the array keeps its length when flushed: one emptied at every reply
   * gave its storage back and reallocated it at the next.
   */
  readonly #pending: Held[] = [];
  #count = 0;
  /** Whether #pending may hold a final reply still to come (see `writeKnownSoon`). */
  #holdsLater = false;
  #knownTimer: ReturnType<typeof setTimeout> | undefined;
  /** When the replies were first held back (performance.now() ms); 0: not held. */
  #heldSince = 0;

  constructor(conn: Conn) {
    this.#conn = conn;
  }

  /** Replies held now. */
  get count(): number {
    return this.#count;
  }

  /** Adds a reply (sent at the next flush; `heldTooLong` bounds how long it waits). */
  hold(r: Reply): void {
    this.#pending[this.#count++] = r;
  }

  /** Adds a final reply still to come. */
  holdLater(later: LaterReply): void {
    this.#holdsLater = true;
    this.#pending[this.#count++] = later;
  }

  /** Whether the held replies must go out now although more input is here. */
  isFull(): boolean {
    return this.#count >= MAX_HELD_REPLIES || this.#heldTooLong();
  }

  /**
   * Whether the replies held for a group waited MAX_HOLD_MS. The group's time starts when it is
   * first asked here, right after its first reply was queued: the clock is read only while
   * replies are held, not for every reply (an MX without pipelining flushes each one).
   */
  #heldTooLong(): boolean {
    const now = performance.now();
    if (this.#heldSince === 0) {
      this.#heldSince = now;
      return false;
    }
    return now - this.#heldSince >= MAX_HOLD_MS;
  }

  /**
   * A command is waiting: when a final reply still to come is held (the customer's local
   * hand-off: the next message's RCPT waits for the local reply to the message before it), the
   * replies known before that one go out after MAX_HOLD_MS, as a flush would.
   */
  writeKnownSoon(): void {
    if (this.#holdsLater) this.#knownTimer ??= setTimeout(this.#writeKnown, MAX_HOLD_MS);
  }

  /** The session ended: no timed write any more. */
  stop(): void {
    clearTimeout(this.#knownTimer);
    this.#knownTimer = undefined;
  }

  readonly #writeKnown = (): void => {
    this.#knownTimer = undefined;
    // Not awaited (the command is): a failed write surfaces at the next read or write.
    this.writeKnown()?.catch(() => {});
  };

  /**
   * Writes the held replies known now, in order up to the first final reply still to come (all
   * of them at an MX); undefined when there is none to write. For a command that must wait for
   * the peer's bytes (a BDAT chunk): the replies held for a group go out as a flush would, while
   * the command goes on (RFC 2920 §3.2 allows a flush at any time).
   */
  writeKnown(): Promise<void> | undefined {
    const count = this.#count;
    if (count === 0) return undefined;
    const head = knownHead(this.#pending, count);
    if (head === undefined) return undefined;
    this.#pending.copyWithin(0, head.taken, count);
    this.#pending.fill(undefined, count - head.taken, count);
    this.#count = count - head.taken;
    this.#heldSince = this.#count > 0 ? performance.now() : 0;
    return this.#write(head.bytes, {});
  }

  /**
   * Writes every held reply. Without `untilSent` it returns once the socket took the bytes (no
   * timer, no callback: the reply path of every command); a write error then surfaces at the
   * next read or write. `untilSent` waits until they were handed to the kernel, under
   * `timeoutMs` (the 220 before a TLS handshake, a last reply).
   */
  flush(opts: FlushOptions = {}): Promise<void> {
    const pending = this.#pending;
    const count = this.#count;
    if (count === 0) return DONE;
    this.#heldSince = 0;
    this.#count = 0;
    this.#holdsLater = false;
    const only = count === 1 ? pending[0] : undefined;
    // One reply (each command's at an MX without pipelining): its bytes, no async frame.
    if (only !== undefined && !(only instanceof LaterReply)) {
      pending[0] = undefined;
      return this.#write(replyBytes(only), opts);
    }
    const held = pending.slice(0, count) as (Reply | LaterReply)[];
    pending.fill(undefined, 0, count);
    return this.#writeHeld(held, opts);
  }

  /** Writes held replies in order, in one write when all are known; the last under `opts`. */
  async #writeHeld(held: readonly (Reply | LaterReply)[], opts: FlushOptions): Promise<void> {
    let parts: Uint8Array[] = [];
    for (const p of held) {
      if (!(p instanceof LaterReply)) {
        parts.push(replyBytes(p));
        continue;
      }
      if (p.reply === undefined && parts.length > 0) {
        await this.#write(concatBytes(parts), {});
        parts = [];
      }
      parts.push(replyBytes(p.reply ?? await p.came));
    }
    await this.#write(concatBytes(parts), opts);
  }

  #write(out: Uint8Array, opts: FlushOptions): Promise<void> {
    if (opts.untilSent !== true) return this.#conn.write(out);
    const timeoutMs = opts.timeoutMs;
    return this.#conn.write(
      out,
      timeoutMs === undefined ? { flush: true } : { flush: true, timeoutMs },
    );
  }
}
