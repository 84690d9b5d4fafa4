/**
 * Replies the sender makes up itself when a message cannot be offered to this peer (the
 * replies for a lost link are in `client/link.ts`). They end up in the queue's last reply and
 * in DSN Diagnostic-Code fields, so they say what happened without local detail.
 */
import { reply } from "../wire/reply.ts";
import type { Reply } from "../wire/reply.ts";

/** The sender's own refusals of one message (or recipient) to one peer. */
export const SENDER_REPLIES = {
  /** 8-bit body, peer without 8BITMIME (docs/protocol.md §5.3: bounce rather than rewrite). */
  needs8BitMime: reply(554, "5.6.3", "Peer does not accept 8-bit content (no 8BITMIME)"),
  /** BINARYMIME body: needs BDAT, which this sender does not speak. */
  needsBinaryMime: reply(554, "5.6.3", "Binary content cannot be relayed to this peer"),
  /** UTF-8 envelope or headers, peer without SMTPUTF8 (docs/protocol.md §5.5 project choice). */
  needsSmtpUtf8: reply(553, "5.6.7", "Peer does not accept internationalized mail (no SMTPUTF8)"),
  /** The stored body holds a bare CR or LF; sending it would be a smuggling sequence. */
  bareNewline: reply(554, "5.6.0", "Message contains a bare CR or LF and cannot be relayed"),
  /** A stored body line over 998 octets (RFC 5321 §4.5.3.1.6); the peer would refuse it. */
  lineTooLong: reply(554, "5.6.0", "Message has a line over 998 octets and cannot be relayed"),
  /** The reverse-path cannot be put on a command line. */
  badSender: reply(553, "5.1.7", "Sender address cannot be relayed"),
  /** The forward-path cannot be put on a command line. */
  badRecipient: reply(553, "5.1.3", "Recipient address cannot be relayed"),
  /** Reading the stored body failed mid-transfer. */
  bodyFailed: reply(451, "4.3.0", "Local error reading the message"),
} as const satisfies Record<string, Reply>;
