/**
 * The body phase of one outbound transaction after 354: the stored body streamed through the
 * dot-stuffer (RFC 5321 §4.5.2), the end marker, then the final reply settling the accepted
 * recipients. Without lineRecords the body goes out in writes of up to BODY_WRITE_BYTES and the
 * last one also carries what `following` returns (the next message's envelope, RFC 2920 §3.1).
 * A body that cannot be completed drops the link: "." must never follow a partial body.
 */
import { concatBytes } from "../wire/bytes.ts";
import { DotStuffer } from "../wire/dot_stuffer.ts";
import { isPermanent, isPositive, isTransient } from "../wire/reply.ts";
import { type ClientLink, LINK_CLOSED, LINK_PROTOCOL_ERROR } from "./client/link.ts";
import type { RecipientLedger } from "./_sender_ledger.ts";
import { type EnvelopeContext, settleFinal } from "./_sender_envelope.ts";
import { SENDER_REPLIES } from "./_sender_replies.ts";

/** Body bytes joined into one write (without lineRecords) before it goes out. */
const BODY_WRITE_BYTES = 64 * 1024;

/** Sends the body to the accepted recipients and settles them by the final reply. */
export async function sendBody(
  ctx: EnvelopeContext,
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  accepted: readonly number[],
  ledger: RecipientLedger,
  opts: {
    /** MAIL asked for PRDR. */
    readonly isPrdr: boolean;
    /** The next message's envelope, to write right behind ".". */
    readonly following: (() => Promise<Uint8Array[]>) | undefined;
  },
): Promise<void> {
  const { following } = opts;
  const { link, timeouts } = ctx;
  const lineRecords = link.lineRecords;
  const stuffer = new DotStuffer({ splitLines: lineRecords });
  const iterator = Symbol.asyncIterator in body
    ? body[Symbol.asyncIterator]()
    : body[Symbol.iterator]();
  let isExhausted = false;
  let held: Uint8Array[] = [];
  let heldBytes = 0;
  try {
    for (;;) {
      const next = await nextBodyChunk(iterator, link);
      if (next === undefined) {
        isExhausted = true;
        for (const i of accepted) ledger.settle(i, "deferred", SENDER_REPLIES.bodyFailed);
        return;
      }
      if (next.done) {
        isExhausted = true;
        break;
      }
      const pieces = stuffer.push(next.value);
      if (stuffer.fault !== undefined) {
        failBareNewline(ctx, accepted, ledger);
        return;
      }
      if (lineRecords) {
        if (!(await link.writeEach(pieces, timeouts.dataBlockMs))) return;
        continue;
      }
      for (const p of pieces) {
        held.push(p);
        heldBytes += p.length;
      }
      if (heldBytes >= BODY_WRITE_BYTES) {
        const out = held;
        held = [];
        heldBytes = 0;
        if (!(await link.writeEach(out, timeouts.dataBlockMs))) return;
      }
    }
  } finally {
    if (!isExhausted) await closeIterator(iterator);
  }
  const end = stuffer.finish();
  if (stuffer.fault !== undefined) {
    // Nothing held back was written: the peer never sees the part before the bare CR.
    failBareNewline(ctx, accepted, ledger);
    return;
  }
  const tail = [...held, ...end, ...(following === undefined ? [] : await following())];
  ledger.markEndSent();
  if (!(await link.writeEach(lineRecords ? tail : [concatBytes(tail)], timeouts.dataBlockMs))) {
    return;
  }
  const final = await link.read(timeouts.dataFinalMs);
  if (final.kind === "lost") return;
  if (opts.isPrdr && final.reply.code === PRDR_BEGINS) {
    await readPerRecipient(ctx, accepted, ledger);
    return;
  }
  settleFinal(link, final.reply, accepted, ledger);
}

/** draft-hall-prdr-00: after 353, one reply per accepted recipient in RCPT order. */
const PRDR_BEGINS = 353;

/**
 * PRDR: settles each accepted recipient by its own reply, then reads the final reply, which
 * only says whether any recipient took the message.
 */
async function readPerRecipient(
  ctx: EnvelopeContext,
  accepted: readonly number[],
  ledger: RecipientLedger,
): Promise<void> {
  const { link, timeouts } = ctx;
  for (const i of accepted) {
    const each = await link.read(timeouts.dataFinalMs);
    if (each.kind === "lost") return;
    if (!settleFinal(link, each.reply, [i], ledger)) return;
  }
  const final = await link.read(timeouts.dataFinalMs);
  if (final.kind === "lost") return;
  // Its code only says whether any recipient took the message; a 3xx is out of place.
  const r = final.reply;
  if (!isPositive(r) && !isTransient(r) && !isPermanent(r)) {
    link.lose(LINK_PROTOCOL_ERROR, `unexpected reply ${final.reply.code} after PRDR replies`);
  }
}

/**
 * A bare CR/LF in the stored body: part of it may be on the wire already, and the end marker
 * must not follow it, so the link is dropped (the peer discards the partial message). The
 * message can never be sent as stored, so its recipients fail (5.6.0) instead of looping as
 * deferred.
 */
function failBareNewline(
  ctx: EnvelopeContext,
  accepted: readonly number[],
  ledger: RecipientLedger,
): void {
  ctx.link.lose(LINK_CLOSED, "message body holds a bare CR or LF");
  for (const i of accepted) ledger.settle(i, "failed", SENDER_REPLIES.bareNewline);
}

/**
 * The body's next chunk, or undefined once reading it failed: the link is then dropped, since
 * the end of data ("." or BDAT LAST) must never follow a partial body.
 */
export async function nextBodyChunk(
  iterator: Iterator<Uint8Array> | AsyncIterator<Uint8Array>,
  link: ClientLink,
): Promise<IteratorResult<Uint8Array> | undefined> {
  try {
    return await iterator.next();
  } catch (err) {
    link.lose(SENDER_REPLIES.bodyFailed, `reading the message body failed: ${String(err)}`);
    return undefined;
  }
}

/** Ends an iterator early; a source failing to clean up changes no outcome already decided. */
export async function closeIterator<T>(iterator: Iterator<T> | AsyncIterator<T>): Promise<void> {
  try {
    await iterator.return?.();
  } catch {
    // See above.
  }
}
