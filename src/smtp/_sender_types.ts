/**
 * What the sender takes and gives back: messages, per-recipient results and the client-side
 * deadlines. Types and constants only.
 */
import type { Reply } from "../wire/reply.ts";
import type { MessageParams, SettleOutcome } from "../queue/types.ts";
import type { OutboundRecipient } from "./_sender_commands.ts";

/** How long to wait for each reply (client side, RFC 5321 §4.5.3.2). */
export interface SenderTimeouts {
  readonly greetingMs: number;
  readonly ehloMs: number;
  readonly mailMs: number;
  readonly rcptMs: number;
  readonly dataInitMs: number;
  /** Per body write (send progress). */
  readonly dataBlockMs: number;
  /** For the reply after `.`. */
  readonly dataFinalMs: number;
  /** For the 221 after QUIT (not in the RFC; the session is over anyway). */
  readonly quitMs: number;
}

/** RFC 5321 §4.5.3.2 minimums: 5, 5, 5, 5, 2, 3, 10 minutes. */
export const DEFAULT_SENDER_TIMEOUTS: SenderTimeouts = {
  greetingMs: 5 * 60_000,
  ehloMs: 5 * 60_000,
  mailMs: 5 * 60_000,
  rcptMs: 5 * 60_000,
  dataInitMs: 2 * 60_000,
  dataBlockMs: 3 * 60_000,
  dataFinalMs: 10 * 60_000,
  quitMs: 30_000,
};

/** One message to send. */
export interface OutboundMessage {
  /** Reverse-path without brackets; "" for `<>`. */
  readonly mailFrom: string;
  readonly params: MessageParams;
  /** Body size in octets (for SIZE=). */
  readonly size: number;
  readonly recipients: readonly OutboundRecipient[];
  /**
   * Body bytes as stored (not dot-stuffed), streamed in order; called once to check the body
   * and, for a body too large to keep, once more to send it. A yielded chunk must stay
   * unchanged afterwards: the sender may keep it to send later or join it with the next write.
   */
  readBody(): AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

/** How one recipient ended, with the reply that decided it (the peer's or a local one). */
export interface RecipientResult {
  readonly id: number;
  readonly outcome: SettleOutcome;
  readonly reply: Reply;
}

/** Result of one message: every recipient settled once, in the message's order. */
export interface MessageResult {
  readonly recipients: RecipientResult[];
  /** The connection is unusable after this (421, timeout, EOF, broken framing). */
  readonly connectionLost: boolean;
  /**
   * The end of data ("." or `BDAT … LAST`) went out, or its write began: without a final reply
   * the peer may still have taken the message, so sending it again may deliver it twice.
   */
  readonly isEndSent: boolean;
}
