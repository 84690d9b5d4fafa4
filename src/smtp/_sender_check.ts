/**
 * The sender's look at a stored body before it commits to the message: once DATA got 354,
 * nothing but dropping the connection can stop a body, so a body that cannot be relayed
 * must be found before MAIL goes out. Refused: a bare CR or LF (SMTP smuggling), a line over
 * the limit (RFC 5321 §4.5.3.1.6), 8-bit bytes in a body not declared 8BITMIME when the peer
 * lacks 8BITMIME (RFC 6152; docs/QUIRKS.md: fail rather than downgrade). A small body is kept
 * in memory by the check and sent from there (one read); a larger one is read again to send.
 */
import { LineBreakScan } from "../wire/line_break_scan.ts";
import type { Reply } from "../wire/reply.ts";
import type { Capabilities } from "../wire/ehlo.ts";
import type { MessageParams } from "../queue/types.ts";
import type { Logger } from "../observe/log.ts";
import { closeIterator } from "./_sender_body.ts";
import { type Planned, planTransaction } from "./_sender_envelope.ts";
import type { RecipientLedger } from "./_sender_ledger.ts";
import type { OutboundMessage } from "./_sender_types.ts";
import { SENDER_REPLIES } from "./_sender_replies.ts";

/** RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including its CRLF. */
export const MAX_LINE_OCTETS = 1000;
/** Bodies up to this size are kept by the check and sent from memory (no second read). */
export const HOLD_BODY_BYTES = 256 * 1024;

/** Why a body cannot be relayed. */
export type BodyFault = "bareNewline" | "lineTooLong" | "eightBit";

const CR = 13;
const LF = 10;

/** Incremental check of one body; chunks may split anything, even a CRLF. Pure. */
export class BodyScanner {
  readonly #maxLineOctets: number;
  readonly #allowEightBit: boolean;
  #fault: BodyFault | undefined;
  /** Octets of the current line seen so far (its CR included). */
  #lineOctets = 0;
  /** The last byte of the previous chunk (-1 before any). */
  #lastByte = -1;

  constructor(opts: { readonly maxLineOctets: number; readonly allowEightBit: boolean }) {
    this.#maxLineOctets = opts.maxLineOctets;
    this.#allowEightBit = opts.allowEightBit;
  }

  get fault(): BodyFault | undefined {
    return this.#fault;
  }

  /** The body so far ends inside a line: CRLF must be added before the end of data (BDAT). */
  get needsFinalCrlf(): boolean {
    return this.#lineOctets > 0;
  }

  push(chunk: Uint8Array): void {
    if (this.#fault !== undefined || chunk.length === 0) return;
    // A CR that ended the previous chunk must be followed by this chunk's LF.
    if (this.#lastByte === CR && chunk[0] !== LF) return this.#fail("bareNewline");
    // Every LF ends a line: it needs its CR, and the line must fit. Every CR inside the chunk
    // must be followed by LF (a final CR is checked by the next chunk); a bare CR counts after
    // the LFs' faults, as the line-length one does.
    const n = chunk.length;
    let lineStart = -this.#lineOctets;
    let hasBareCr = false;
    // The breaks found a word at a time (wire/line_break_scan.ts): most octets are neither.
    const scan = new LineBreakScan(chunk);
    for (let i = scan.next(0); i < n; i = scan.next(i + 1)) {
      if (chunk[i] === LF) {
        const before = i > 0 ? chunk[i - 1] : this.#lastByte;
        if (before !== CR) return this.#fail("bareNewline");
        if (i - lineStart + 1 > this.#maxLineOctets) return this.#fail("lineTooLong");
        lineStart = i + 1;
      } else if (i + 1 < n && chunk[i + 1] !== LF) hasBareCr = true;
    }
    this.#lineOctets = n - lineStart;
    // +1: the LF still to come (the CR, if any, is counted already).
    if (this.#lineOctets + 1 > this.#maxLineOctets) return this.#fail("lineTooLong");
    if (hasBareCr) return this.#fail("bareNewline");
    if (!this.#allowEightBit && hasEightBit(chunk)) return this.#fail("eightBit");
    this.#lastByte = chunk[chunk.length - 1] ?? -1;
  }

  /** The body ended: a CR at its very end is bare; a last line without CRLF gets one added. */
  finish(): BodyFault | undefined {
    if (this.#fault !== undefined) return this.#fault;
    if (this.#lastByte === CR) this.#fail("bareNewline");
    else if (this.#lineOctets > 0 && this.#lineOctets + 2 > this.#maxLineOctets) {
      this.#fail("lineTooLong");
    }
    return this.#fault;
  }

  #fail(fault: BodyFault): void {
    this.#fault = fault;
  }
}

/** The reply that fails a message with this fault. */
export function faultReply(fault: BodyFault): Reply {
  switch (fault) {
    case "bareNewline":
      return SENDER_REPLIES.bareNewline;
    case "lineTooLong":
      return SENDER_REPLIES.lineTooLong;
    case "eightBit":
      return SENDER_REPLIES.needs8BitMime;
    default: {
      const never: never = fault;
      throw new Error(`unreachable fault ${never}`);
    }
  }
}

/** A body as the sender may send it. */
export type Body = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** What the check decided. */
export type CheckedBody =
  /**
   * Send `body` (the chunks kept in memory, or a fresh read); `needsFinalCrlf`: its last line
   * has no CRLF (RFC 5321 §4.1.1.4: DATA's "." adds one, BDAT must add it to the data).
   */
  | { readonly kind: "send"; readonly body: Body; readonly needsFinalCrlf: boolean }
  /** Never relayable to this peer as stored: fail the message with `reply`. */
  | { readonly kind: "refused"; readonly fault: BodyFault; readonly reply: Reply }
  /** Reading the stored body failed: defer the message with `reply`. */
  | { readonly kind: "unreadable"; readonly reply: Reply; readonly error: string };

/** Reads and checks a stored body; never throws. */
export async function checkBody(
  readBody: () => Body,
  opts: {
    readonly params: MessageParams;
    readonly peerHasEightBitMime: boolean;
    readonly maxLineOctets?: number;
  },
): Promise<CheckedBody> {
  const scanner = new BodyScanner({
    maxLineOctets: opts.maxLineOctets ?? MAX_LINE_OCTETS,
    // A body declared 8BITMIME reaches only a peer that offers it (planEnvelope refuses it
    // otherwise); an undeclared one may carry 8-bit only to a peer that takes it anyway.
    allowEightBit: opts.peerHasEightBitMime || opts.params.body !== undefined &&
        opts.params.body !== "7BIT",
  });
  let held: Uint8Array[] | undefined = [];
  let heldBytes = 0;
  let iterator: Iterator<Uint8Array> | AsyncIterator<Uint8Array> | undefined;
  let isExhausted = false;
  try {
    const body = readBody();
    iterator = Symbol.asyncIterator in body
      ? body[Symbol.asyncIterator]()
      : body[Symbol.iterator]();
    for (;;) {
      const next = await iterator.next();
      if (next.done) {
        isExhausted = true;
        break;
      }
      scanner.push(next.value);
      if (scanner.fault !== undefined) break;
      if (held !== undefined) {
        heldBytes += next.value.length;
        if (heldBytes <= HOLD_BODY_BYTES) held.push(next.value);
        else held = undefined; // read again to send
      }
    }
  } catch (err) {
    isExhausted = true;
    return { kind: "unreadable", reply: SENDER_REPLIES.bodyFailed, error: String(err) };
  } finally {
    if (!isExhausted && iterator !== undefined) await closeIterator(iterator);
  }
  const fault = scanner.finish();
  if (fault !== undefined) return { kind: "refused", fault, reply: faultReply(fault) };
  return {
    kind: "send",
    body: held ?? readAgain(readBody),
    needsFinalCrlf: scanner.needsFinalCrlf,
  };
}

/**
 * What one message will be: its envelope planned (recipients that cannot be offered are
 * settled) and its body checked (a body that cannot be relayed fails, an unreadable one
 * defers, every recipient still to send). No I/O on the link.
 */
export interface Prepared {
  readonly planned: Planned;
  /** The body to send when `planned` is `send`. */
  readonly body: Body | undefined;
  /** The body's last line has no CRLF (see CheckedBody). */
  readonly needsFinalCrlf: boolean;
}

/** Plans and checks one message for a peer with `caps`. Never throws. */
export async function prepareMessage(
  message: OutboundMessage,
  caps: Capabilities,
  ledger: RecipientLedger,
  opts: { readonly log: Logger; readonly maxLineOctets?: number },
): Promise<Prepared> {
  const planned = planTransaction(message, caps, ledger);
  if (planned.kind === "none") return { planned, body: undefined, needsFinalCrlf: false };
  const checked = await checkBody(() => message.readBody(), {
    params: message.params,
    peerHasEightBitMime: caps.eightBitMime,
    ...(opts.maxLineOctets === undefined ? {} : { maxLineOctets: opts.maxLineOctets }),
  });
  switch (checked.kind) {
    case "send":
      return { planned, body: checked.body, needsFinalCrlf: checked.needsFinalCrlf };
    case "refused":
      // Before MAIL: the session goes on with the next message (docs/QUIRKS.md).
      opts.log.warn("message_not_relayable", { fault: checked.fault, size: message.size });
      ledger.settleRest("failed", checked.reply);
      return { planned: { kind: "none" }, body: undefined, needsFinalCrlf: false };
    case "unreadable":
      opts.log.error("message_unreadable", { error: checked.error });
      ledger.settleRest("deferred", checked.reply);
      return { planned: { kind: "none" }, body: undefined, needsFinalCrlf: false };
    default: {
      const never: never = checked;
      throw new Error(`unreachable check ${JSON.stringify(never)}`);
    }
  }
}

/** A second read of the body, started lazily so that a failure surfaces while sending. */
async function* readAgain(readBody: () => Body): AsyncGenerator<Uint8Array> {
  yield* readBody();
}

function hasEightBit(chunk: Uint8Array): boolean {
  for (let i = 0; i < chunk.length; i++) if ((chunk[i] ?? 0) >= 0x80) return true;
  return false;
}
