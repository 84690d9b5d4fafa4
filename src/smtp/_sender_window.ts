/**
 * sendMany with several messages in flight, for a peer that offers CHUNKING and PIPELINING
 * (RFC 3030 §4.2: BDAT needs no 354, so a message's body may follow its envelope at once;
 * RFC 2920: replies come back in order). Each message goes out as one group — RSET when the
 * previous message may have left a transaction open (see `needsRset`), MAIL, every RCPT, then
 * the body as `BDAT n LAST` (a larger body, read again from the store, in chunks of `BDAT n` and
 * a last `BDAT 0 LAST`) — without waiting for a reply, up to `window`
 * messages ahead of the replies, and none while `windowBytes` body octets or more are (when
 * given; so one message may pass it, and a message larger than it goes alone). A full window
 * waits for room for a quarter of it, so that the groups refilling it share one socket write
 * (`_sender_batch.ts` joins what one turn of the event loop made) while the peer still holds the
 * other three quarters to work on. A second loop reads the replies in order, each chunk's as
 * soon as it went out, and settles each message exactly as the lock-step path does (4xx
 * deferred, 5xx failed, the final reply for the accepted recipients), then reports it. Once a
 * chunk is refused (or no recipient was accepted) no further chunk of that body goes out (RFC
 * 3030 §3). After a lost link every message whose group went out is reported, its unsettled
 * recipients deferred; messages not written are not reported.
 */
import { isPositive } from "../wire/reply.ts";
import { type Capabilities, LAST_ENDS_TRANSACTION } from "../wire/ehlo.ts";
import { type ClientLink, LINK_CLOSED, LINK_PROTOCOL_ERROR } from "./client/link.ts";
import type { PlannedSend } from "./_sender_envelope.ts";
import { readEnvelopeReplies, settleAll, settleFinal } from "./_sender_envelope.ts";
import type { Body, Prepared } from "./_sender_check.ts";
import { RecipientLedger } from "./_sender_ledger.ts";
import { closeIterator, nextBodyChunk } from "./_sender_body.ts";
import { WriteBatch } from "./_sender_batch.ts";
import type { MessageResult, OutboundMessage, SenderTimeouts } from "./_sender_types.ts";

/** Body bytes per BDAT chunk when a body is streamed from the store. */
const CHUNK_BYTES = 64 * 1024;

const CRLF = new Uint8Array([13, 10]);
const encoder = new TextEncoder();

/** One message between its group going out and its report. */
interface Entry<M> {
  readonly message: M;
  readonly ledger: RecipientLedger;
  /** Undefined: nothing to send (settled while planning); reported without I/O. */
  readonly planned: PlannedSend | undefined;
  readonly rset: boolean;
  /** BDAT commands handed to the link so far. */
  bdats: number;
  /** The position of the `BDAT … LAST` among them, once it went out. */
  lastAt: number | undefined;
  /** No further BDAT of this message will go out (all written, stopped, or the link lost). */
  isWritten: boolean;
  /** The message was decided before its body ended (refused chunk, no recipient): stop it. */
  isDecided: boolean;
  /** Its `BDAT … LAST` got a positive reply: the transaction ended (RFC 5321 §4.1.1.4). */
  isClean: boolean;
}

/** One message being written: where its bytes go, and who waits for its BDATs. */
interface Writing {
  readonly batch: WriteBatch;
  readonly entry: Entry<OutboundMessage>;
  /** The body's last line has no CRLF: BDAT adds it. */
  readonly needsFinalCrlf: boolean;
  readonly signal: Signal;
}

/** What the window needs of the sender. */
export interface WindowContext {
  readonly link: ClientLink;
  readonly timeouts: SenderTimeouts;
  /** Messages in flight at most. */
  readonly window: number;
  /** No further message goes out while this many body octets are in flight; undefined: no limit. */
  readonly windowBytes: number | undefined;
  /** The peer said `LAST_ENDS_TRANSACTION` (wire/ehlo.ts). */
  readonly lastEnds: boolean;
  readonly prepare: (message: OutboundMessage, ledger: RecipientLedger) => Promise<Prepared>;
}

/** Wakes whoever waits for the other loop to move (writer: room; reader: replies to read). */
class Signal {
  #waiters: (() => void)[] = [];

  wait(): Promise<void> {
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}

/** Sends every message of `messages` with up to `window` in flight; see the module comment. */
export async function sendWindowed<M extends OutboundMessage>(
  ctx: WindowContext,
  messages: AsyncIterable<M> | Iterable<M>,
  onResult: (message: M, result: MessageResult) => Promise<void> | void,
): Promise<{ readonly sent: number }> {
  const { link } = ctx;
  const iterator = Symbol.asyncIterator in messages
    ? messages[Symbol.asyncIterator]()
    : messages[Symbol.iterator]();
  const batch = new WriteBatch(link, ctx.timeouts.dataBlockMs);
  const queue: Entry<M>[] = [];
  const signal = new Signal();
  let isWriterDone = false;
  let sourceError: { readonly error: unknown } | undefined;
  /** Messages whose group went out and whose replies are not all read, and their bytes. */
  let inFlight = 0;
  let inFlightBytes = 0;
  const maxBytes = ctx.windowBytes ?? Number.POSITIVE_INFINITY;
  const isFull = () => inFlight >= ctx.window || inFlightBytes >= maxBytes;
  // A full window is refilled once a quarter of it is free: the groups share one write.
  const refillAt = ctx.window - Math.max(1, Math.floor(ctx.window / 4));
  const hasRoom = () =>
    inFlight === 0 || (inFlight <= refillAt && inFlightBytes <= maxBytes * 0.75);
  let isExhausted = false;
  /** The reader has stopped (the end, or `onResult` or a read threw): the writer stops too. */
  let isStopped = false;

  const writer = (async () => {
    /** The last message whose group went out. */
    let previous: Entry<M> | undefined;
    try {
      for (;;) {
        if (isFull()) {
          while (!hasRoom() && !link.isLost && !isStopped) await signal.wait();
        }
        if (link.isLost || isStopped) return;
        const next = await iterator.next();
        if (next.done) {
          isExhausted = true;
          return;
        }
        const message = next.value;
        const ledger = new RecipientLedger(message.recipients);
        const { planned, body, needsFinalCrlf } = await ctx.prepare(message, ledger);
        const isSending = planned.kind === "send" && body !== undefined;
        if (isSending && (link.isLost || isStopped)) return;
        const entry: Entry<M> = {
          message,
          ledger,
          planned: isSending ? planned : undefined,
          rset: isSending && previous !== undefined && needsRset(previous, ctx.lastEnds),
          bdats: 0,
          lastAt: undefined,
          isWritten: !isSending,
          isDecided: false,
          isClean: false,
        };
        queue.push(entry);
        signal.wake();
        if (!isSending) continue;
        previous = entry;
        inFlight++;
        inFlightBytes += message.size;
        await writeMessage({ batch, entry, needsFinalCrlf, signal }, body);
      }
    } catch (error) {
      isExhausted = true;
      sourceError = { error };
    } finally {
      isWriterDone = true;
      signal.wake();
    }
  })();

  let sent = 0;
  try {
    for (;;) {
      while (queue.length === 0 && !isWriterDone) await signal.wait();
      const entry = queue.shift();
      if (entry === undefined) break;
      if (entry.planned !== undefined) {
        await readReplies(ctx, entry, entry.planned, signal);
        inFlight--;
        inFlightBytes -= entry.message.size;
        entry.ledger.settleRest("deferred", link.loss?.reply ?? LINK_CLOSED);
      }
      sent++;
      signal.wake();
      await onResult(entry.message, {
        recipients: entry.ledger.results(),
        connectionLost: link.isLost,
        isEndSent: entry.lastAt !== undefined,
      });
    }
  } finally {
    // The writer stops at a lost link, the end, or here; wake it if it waits for room, and stop
    // a body it is writing (never completed: nobody would read its replies).
    isStopped = true;
    for (const e of queue) e.isDecided = true;
    signal.wake();
    await writer;
    // Bytes still waiting belong to messages whose replies nobody will read.
    batch.discard();
    if (!isExhausted) await closeIterator(iterator);
  }
  if (sourceError !== undefined) throw sourceError.error;
  return { sent };
}

/**
 * Whether the next message's group must begin with RSET, given the message before it. A
 * transaction left open would take the next message's RCPTs and body under the wrong sender
 * after refusing its MAIL as nested (RFC 5321 §4.1.1.2: the RCPTs go to the open transaction),
 * so RSET goes whenever that cannot be ruled out when the group is written:
 * - the previous body stopped before its LAST (a refused chunk, RFC 3030 §3): always;
 * - its LAST was answered positively already: never (the end of data cleared it, RFC 5321
 *   §4.1.1.4);
 * - otherwise (a reply not read yet, or a refusal): unless the peer said
 *   `LAST_ENDS_TRANSACTION`. A standard server may keep a transaction whose BDAT it refused for
 *   want of recipients (RFC 2920 §3.1 has the client RSET after such a refused DATA).
 */
function needsRset(previous: Entry<OutboundMessage>, lastEnds: boolean): boolean {
  if (previous.lastAt === undefined) return true;
  if (previous.isClean) return false;
  return !lastEnds;
}

/**
 * Queues one message's group and body on the batch, counting each BDAT in `entry` as it goes
 * and waking the reader. A body that cannot be read to its end drops the link: a partial body
 * must never be completed with LAST. Stops the body once the reader decided the message.
 */
async function writeMessage(out: Writing, body: Body): Promise<void> {
  const { batch, entry, needsFinalCrlf, signal } = out;
  const planned = entry.planned;
  if (planned === undefined) return;
  let group = entry.rset ? "RSET\r\n" : "";
  group += `${planned.mailLine}\r\n`;
  for (const line of planned.rcptLines) group += `${line}\r\n`;
  try {
    if (Array.isArray(body)) {
      // Kept in memory by the body check: one BDAT LAST behind the envelope, no copy but the
      // batch's.
      const chunks = body as readonly Uint8Array[];
      let size = needsFinalCrlf ? CRLF.length : 0;
      for (const c of chunks) size += c.length;
      group += `BDAT ${size} LAST\r\n`;
      entry.lastAt = entry.bdats++;
      const isFull = batch.add([
        encoder.encode(group),
        ...chunks,
        ...(needsFinalCrlf ? [CRLF] : []),
      ]);
      if (isFull) await batch.flush();
      return;
    }
    batch.add([encoder.encode(group)]);
    await writeStreamed(out, body);
  } finally {
    entry.isWritten = true;
    signal.wake();
  }
}

/** A body read again from the store: `BDAT n` chunks, then `BDAT 0 LAST` or the missing CRLF. */
async function writeStreamed(out: Writing, body: Body): Promise<void> {
  const { batch, entry, needsFinalCrlf, signal } = out;
  const { link } = batch;
  const iterator = Symbol.asyncIterator in body
    ? body[Symbol.asyncIterator]()
    : body[Symbol.iterator]();
  let isExhausted = false;
  try {
    for (;;) {
      const next = await nextBodyChunk(iterator, link);
      if (next === undefined) {
        isExhausted = true;
        return;
      }
      if (next.done) {
        isExhausted = true;
        break;
      }
      for (let at = 0; at < next.value.length; at += CHUNK_BYTES) {
        // RFC 3030 §3: after a refused chunk the sender must not send another.
        if (entry.isDecided || link.isLost) return;
        const chunk = next.value.subarray(at, at + CHUNK_BYTES);
        entry.bdats++;
        const isFull = batch.add([encoder.encode(`BDAT ${chunk.length}\r\n`), chunk]);
        signal.wake();
        // Waits for the socket: a slow peer slows the body down (backpressure).
        if (isFull && !(await batch.flush())) return;
      }
    }
  } finally {
    if (!isExhausted) await closeIterator(iterator);
  }
  if (entry.isDecided || link.isLost) return;
  entry.lastAt = entry.bdats++;
  batch.add([
    encoder.encode(`BDAT ${needsFinalCrlf ? 2 : 0} LAST\r\n`),
    ...(needsFinalCrlf ? [CRLF] : []),
  ]);
}

/**
 * Reads one message's replies in order and settles its recipients: RSET, MAIL, each RCPT, then
 * each BDAT's as soon as that chunk went out (a refused chunk is seen while the body is still
 * being written, which then stops).
 */
async function readReplies(
  ctx: WindowContext,
  entry: Entry<OutboundMessage>,
  planned: PlannedSend,
  signal: Signal,
): Promise<void> {
  const { link, timeouts } = ctx;
  const { ledger } = entry;
  if (entry.rset) {
    const rset = await link.read(timeouts.mailMs);
    if (rset.kind === "lost") return;
    if (!isPositive(rset.reply)) {
      link.lose(LINK_PROTOCOL_ERROR, `RSET refused with ${rset.reply.code}`);
      return;
    }
  }
  const envelope = await readEnvelopeReplies(ctx, planned, ledger);
  if (envelope === undefined) return;
  const { accepted } = envelope;
  // Nobody to deliver to: the rest of the body would be refused anyway.
  entry.isDecided = accepted.length === 0;
  for (let n = 0;; n++) {
    while (n >= entry.bdats && !entry.isWritten) await signal.wait();
    if (n >= entry.bdats) return;
    const chunk = await link.read(timeouts.dataFinalMs);
    if (chunk.kind === "lost") return;
    // Replies after the message was decided (no recipient, a refused chunk) keep us in step.
    if (entry.isDecided) continue;
    if (n === entry.lastAt) {
      settleFinal(link, chunk.reply, accepted, ledger);
      entry.isDecided = true;
      entry.isClean = isPositive(chunk.reply);
    } else if (!isPositive(chunk.reply)) {
      if (!settleAll(link, chunk.reply, accepted, ledger, "data")) return;
      entry.isDecided = true;
    }
  }
}

/** Whether the peer offering `caps` ends every transaction at its reply to LAST (wire/ehlo.ts). */
export function endsAtLast(caps: Capabilities): boolean {
  return caps.keywords.has(LAST_ENDS_TRANSACTION);
}

/** Whether the window may be used with a peer offering `caps` (see the module comment). */
export function canUseWindow(
  caps: Capabilities,
  lineRecords: boolean,
): boolean {
  // PRDR's per-recipient replies after the body are the lock-step path's (LMTP customers).
  return caps.chunking && caps.pipelining && !caps.keywords.has("PRDR") && !lineRecords;
}
