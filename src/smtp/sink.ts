/**
 * What an SmtpReceiver hands mail to: the queue (inbound MX) or the local mail system
 * (customer after ATRN). The receiver owns the protocol; the sink owns policy and storage.
 * Every decision comes back as a Reply; an unknown failure is temporary (4xx).
 */
import type { Reply } from "../wire/reply.ts";
import type { MessageParams } from "../queue/types.ts";

/** MAIL FROM as parsed by the receiver. */
export interface MailFrom {
  /** Reverse-path without brackets; "" for `<>`. */
  readonly address: string;
  readonly params: MessageParams;
  /** SIZE= estimate, if given. */
  readonly declaredSize?: number;
  /**
   * The client asked for per-recipient replies after the body (PRDR, draft-hall-prdr-00;
   * only when the receiver offered it). The receiver then ends with `finishEach` if the sink
   * has it.
   */
  readonly prdr?: boolean;
}

/** RCPT TO as parsed by the receiver. */
export interface RcptTo {
  /** Forward-path without brackets, route part removed, local part as received. */
  readonly address: string;
  /** Lower-case A-label. "" only for the bare `<Postmaster>`. */
  readonly domain: string;
  readonly notify?: string;
  readonly orcpt?: string;
}

/** Facts about the session a sink may use (logs, trace header, policy). */
export interface SessionInfo {
  readonly sessionId: string;
  readonly remoteAddress: string;
  readonly heloName: string;
  readonly isSecure: boolean;
  readonly protocol: "SMTP" | "ESMTP" | "ESMTPS" | "ESMTPA" | "ESMTPSA";
  /** The user AUTH proved (submission); undefined when the session did not authenticate. */
  readonly authenticatedUser?: string;
}

/** What the receiver already knows about the client's next command when it asks about a RCPT. */
export interface RcptAhead {
  /**
   * The next command, already received, is DATA (pipelined, RFC 2920) or BDAT: a sink relaying to
   * another server may send its own DATA together with this RCPT. The receiver still calls
   * `write`/`finish`, or `abort` if it refuses the DATA after all.
   */
  readonly dataFollows: boolean;
}

/** One mail transaction inside a sink. */
export interface SinkTransaction {
  /** Id for logs and the Received: header. */
  readonly id: string;
  /** Decides one recipient: 250 to accept, or the rejection. */
  addRecipient(rcpt: RcptTo, ahead?: RcptAhead): Promise<Reply>;
  /** Body bytes after dot-unstuffing, in order; the chunk is only valid during the call. */
  write(chunk: Uint8Array): Promise<void>;
  /** The body is complete: the reply for the end of DATA (250 only when the message is safe). */
  finish(): Promise<Reply>;
  /**
   * Instead of `finish` under PRDR: one reply per accepted recipient, in RCPT order (each 250
   * only when the message is safe for that recipient). Optional: a sink without it gets
   * `finish`, whose one reply then stands for every recipient.
   */
  finishEach?(): Promise<readonly Reply[]>;
  /**
   * Instead of `finish`, when the client's next commands are already received (RFC 2920: "."
   * and the next envelope in one group) and PRDR is not in use: ends the body, and resolves
   * once the end went out, with the final reply still to come. The receiver meanwhile takes
   * the next commands and sends `reply` in its place, in order, once it resolved (a relaying
   * sink thus sends "." and the next MAIL/RCPT/DATA in one round trip; 250 still only once
   * the message is safe). `reply` never rejects. Optional.
   */
  finishLater?(): Promise<{ readonly reply: Promise<Reply> }>;
  /** The transaction was abandoned (RSET, error, lost connection). Idempotent. */
  abort(): Promise<void>;
}

/** Where a receiver puts mail. */
export interface MessageSink {
  /** At MAIL FROM: a transaction, or the rejection of the sender. */
  begin(mail: MailFrom, session: SessionInfo): Promise<SinkTransaction | Reply>;
  /**
   * Called once the replies of a command went to the socket, and at the session's end: work
   * that must not hold a reply back (serve's `queued` line: formatted before the 250, it held
   * every message's 250 back ~40 µs, #13). Optional.
   */
  afterReplies?(): void;
}
