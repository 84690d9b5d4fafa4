/**
 * sendMany with several messages in flight, for a peer that offers CHUNKING and PIPELINING
 * (RFC 3030 §4.2: BDAT needs no 354, so a message's body may follow its envelope at once;
 * RFC 2920: replies come back in order). Each message goes out as one group — RSET (from the
 * second message on: a transaction a refused BDAT left open must not take the next MAIL), MAIL,
 * every RCPT, then the body as `BDAT n LAST` (a larger body, read again from the store, in
 * chunks of `BDAT n` and a last `BDAT 0 LAST`) — without waiting for a reply, up to `window`
 * messages ahead of the replies. A second loop reads the replies in order and settles each
 * message exactly as the lock-step path does (4xx deferred, 5xx failed, the final reply for
 * the accepted recipients), then reports it. After a lost link every message whose group went
 * out is reported, its unsettled recipients deferred; messages not written are not reported.
 */
import { concatBytes } from "../wire/bytes.ts";
import { isPositive } from "../wire/reply.ts";
import type { Capabilities } from "../wire/ehlo.ts";
import { type ClientLink, encodeLines, LINK_CLOSED, LINK_PROTOCOL_ERROR } from "./client/link.ts";
import type { PlannedSend } from "./_sender_envelope.ts";
import { settleAfterMail, settleAll, settleFinal, settleRcpt } from "./_sender_envelope.ts";
import type { Body, Prepared } from "./_sender_check.ts";
import { RecipientLedger } from "./_sender_ledger.ts";
import { closeIterator, nextBodyChunk } from "./_sender_body.ts";
import type { MessageResult, OutboundMessage, SenderTimeouts } from "./_sender_types.ts";

/** Messages in flight when the caller does not say. */
export const DEFAULT_WINDOW = 8;

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
  /** How many BDAT commands went out, once the body is written (0: the link was lost). */
  bdats: Promise<number>;
}

/** What the window needs of the sender. */
export interface WindowContext {
  readonly link: ClientLink;
  readonly timeouts: SenderTimeouts;
  readonly window: number;
  readonly prepare: (message: OutboundMessage, ledger: RecipientLedger) => Promise<Prepared>;
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
  const queue: Entry<M>[] = [];
  let isWriterDone = false;
  let sourceError: { readonly error: unknown } | undefined;
  // The writer waits for room in the window, the reader for a message to read: each turn of
  // either wakes the other.
  let waiters: (() => void)[] = [];
  const signal = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const waitForSignal = () => new Promise<void>((resolve) => waiters.push(resolve));
  let inFlight = 0;
  let isExhausted = false;
  /** The reader has stopped (the end, or `onResult` or a read threw): the writer stops too. */
  let isStopped = false;

  const writer = (async () => {
    let isFirst = true;
    try {
      for (;;) {
        while (inFlight >= ctx.window && !link.isLost && !isStopped) await waitForSignal();
        if (link.isLost || isStopped) return;
        const next = await iterator.next();
        if (next.done) {
          isExhausted = true;
          return;
        }
        const message = next.value;
        const ledger = new RecipientLedger(message.recipients);
        const { planned, body } = await ctx.prepare(message, ledger);
        if (planned.kind !== "send" || body === undefined) {
          queue.push({
            message,
            ledger,
            planned: undefined,
            rset: false,
            bdats: Promise.resolve(0),
          });
          signal();
          continue;
        }
        if (link.isLost || isStopped) return;
        const entry: Entry<M> = {
          message,
          ledger,
          planned,
          rset: !isFirst,
          bdats: Promise.resolve(0),
        };
        isFirst = false;
        let done: (n: number) => void = () => {};
        entry.bdats = new Promise<number>((resolve) => done = resolve);
        queue.push(entry);
        inFlight++;
        signal();
        done(await writeMessage(ctx, entry, body));
      }
    } catch (error) {
      isExhausted = true;
      sourceError = { error };
    } finally {
      isWriterDone = true;
      signal();
    }
  })();

  let sent = 0;
  try {
    for (;;) {
      while (queue.length === 0 && !isWriterDone) await waitForSignal();
      const entry = queue.shift();
      if (entry === undefined) break;
      if (entry.planned !== undefined) {
        await readReplies(ctx, entry, entry.planned);
        inFlight--;
        entry.ledger.settleRest("deferred", link.loss?.reply ?? LINK_CLOSED);
      }
      sent++;
      signal();
      await onResult(entry.message, {
        recipients: entry.ledger.results(),
        connectionLost: link.isLost,
      });
    }
  } finally {
    // The writer stops at a lost link, the end, or here; wake it if it waits for room.
    isStopped = true;
    signal();
    await writer;
    if (!isExhausted) await closeIterator(iterator);
  }
  if (sourceError !== undefined) throw sourceError.error;
  return { sent };
}

/**
 * Writes one message's group and body; resolves with the number of BDAT commands written
 * (0 when the link was lost before the first went out). A body that cannot be read to its
 * end drops the link: a partial body must never be completed with LAST.
 */
async function writeMessage(
  ctx: WindowContext,
  entry: Entry<OutboundMessage>,
  body: Body,
): Promise<number> {
  const { link, timeouts } = ctx;
  const planned = entry.planned;
  if (planned === undefined) return 0;
  const lines = encodeLines([
    ...(entry.rset ? ["RSET"] : []),
    planned.mailLine,
    ...planned.rcptLines,
  ]);
  if (Array.isArray(body)) {
    // Kept in memory by the body check: one BDAT LAST in the same write as the envelope.
    const bytes = withFinalCrlf(concatBytes(body as Uint8Array[]));
    const command = encoder.encode(`BDAT ${bytes.length} LAST\r\n`);
    return (await link.writeEach([concatBytes([...lines, command, bytes])], timeouts.mailMs))
      ? 1
      : 0;
  }
  if (!(await link.writeEach([concatBytes(lines)], timeouts.mailMs))) return 0;
  let bdats = 0;
  /** The body's last two bytes so far (a chunk may end between CR and LF). */
  let last: Uint8Array = new Uint8Array(0);
  const iterator = Symbol.asyncIterator in body
    ? body[Symbol.asyncIterator]()
    : body[Symbol.iterator]();
  let isExhausted = false;
  try {
    for (;;) {
      const next = await nextBodyChunk(iterator, link);
      if (next === undefined) {
        isExhausted = true;
        return bdats;
      }
      if (next.done) {
        isExhausted = true;
        break;
      }
      for (let at = 0; at < next.value.length; at += CHUNK_BYTES) {
        const chunk = next.value.subarray(at, at + CHUNK_BYTES);
        last = chunk.length >= 2 ? chunk.subarray(-2) : concatBytes([last, chunk]).slice(-2);
        const command = encoder.encode(`BDAT ${chunk.length}\r\n`);
        if (!(await link.writeEach([concatBytes([command, chunk])], timeouts.dataBlockMs))) {
          return bdats;
        }
        bdats++;
      }
    }
  } finally {
    if (!isExhausted) await closeIterator(iterator);
  }
  const tail = endsWithCrlf(last) ? new Uint8Array(0) : CRLF;
  const end = encoder.encode(`BDAT ${tail.length} LAST\r\n`);
  if (!(await link.writeEach([concatBytes([end, tail])], timeouts.dataBlockMs))) return bdats;
  return bdats + 1;
}

/** Reads one message's replies in order and settles its recipients. */
async function readReplies(
  ctx: WindowContext,
  entry: Entry<OutboundMessage>,
  planned: PlannedSend,
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
  const mail = await link.read(timeouts.mailMs);
  if (mail.kind === "lost") return;
  const isMailAccepted = settleAfterMail(link, mail.reply, planned.toSend, ledger);
  if (isMailAccepted === undefined) return;
  const accepted: number[] = [];
  for (const i of planned.toSend) {
    const rcpt = await link.read(timeouts.rcptMs);
    if (rcpt.kind === "lost") return;
    // After a refused MAIL the RCPT replies (503s) are read only to stay in step.
    if (isMailAccepted && !settleRcpt(link, rcpt.reply, i, ledger, accepted)) return;
  }
  const bdats = await entry.bdats;
  let decided = accepted.length === 0;
  for (let n = 0; n < bdats; n++) {
    const chunk = await link.read(timeouts.dataFinalMs);
    if (chunk.kind === "lost") return;
    // Replies after the message was decided (no recipient, a refused chunk) keep us in step.
    if (decided) continue;
    if (n === bdats - 1) {
      settleFinal(link, chunk.reply, accepted, ledger);
      decided = true;
    } else if (!isPositive(chunk.reply)) {
      if (!settleAll(link, chunk.reply, accepted, ledger, "data")) return;
      decided = true;
    }
  }
}

function endsWithCrlf(bytes: Uint8Array): boolean {
  const n = bytes.length;
  return n >= 2 && bytes[n - 2] === 13 && bytes[n - 1] === 10;
}

/** RFC 5321 ends a message with CRLF; DATA adds a missing one before ".", so does BDAT here. */
function withFinalCrlf(bytes: Uint8Array): Uint8Array {
  return bytes.length === 0 || endsWithCrlf(bytes) ? bytes : concatBytes([bytes, CRLF]);
}

/** Whether the window may be used with a peer offering `caps` (see the module comment). */
export function canUseWindow(
  caps: Capabilities,
  lineRecords: boolean,
): boolean {
  // PRDR's per-recipient replies after the body are the lock-step path's (LMTP customers).
  return caps.chunking && caps.pipelining && !caps.keywords.has("PRDR") && !lineRecords;
}
