/**
 * Types shared by the SMTP server role's modules: its options, how a session ends, what a
 * command handler may read (ReceiverContext) and what it returns (Outcome). No logic.
 */
import type { SmtpEvents } from "./events.ts";
import type tls from "node:tls";
import type { Conn } from "../net/conn.ts";
import type { LineReader } from "../wire/line_reader.ts";
import type { Logger } from "../observe/log.ts";
import type { Reply } from "../wire/reply.ts";
import type { MessageSink, SessionInfo } from "./sink.ts";
import type { CheckContext, SessionState } from "./_receiver_checks.ts";

/**
 * SMTP AUTH (RFC 4954) for a receiver that requires it (the submission port): with it, the
 * receiver offers AUTH in EHLO and refuses MAIL with `530 5.7.0` until AUTH succeeded. The
 * exchange, its throttling and its logs are the hook's; the receiver only keeps the user.
 */
export interface ReceiverAuth {
  /**
   * Epoch ms by which AUTH must have succeeded (`submission.auth_timeout`): command and AUTH
   * response reads before it wait no longer, then `421 4.7.0` and the end. Absent: none.
   */
  readonly deadline?: number | undefined;
  /** STARTTLS succeeded: the session starts over (RFC 3207 §4.2), the deadline with it. */
  tlsStarted?(): void;
  /** Mechanisms to offer on this connection now (PLAIN/LOGIN only when `isSecure`). */
  mechanisms(isSecure: boolean): readonly string[];
  /** Runs one `AUTH` command (`args`: the text after the verb) on the connection. */
  authenticate(
    args: string,
    link: { readonly conn: Conn; readonly reader: LineReader; readonly offered: readonly string[] },
  ): Promise<AuthResult>;
}

/** How an AUTH command ended, for the receiver. */
export type AuthResult =
  | { readonly kind: "success"; readonly user: string; readonly reply: Reply }
  /** Refused (bad credentials, syntax, cancel); `isProtocolError` counts it as an error. */
  | { readonly kind: "refused"; readonly reply: Reply; readonly isProtocolError: boolean }
  /** The session must end, after `reply` if there is one (`reason`: default tooManyErrors). */
  | { readonly kind: "end"; readonly reply?: Reply; readonly reason?: EndReason };

/** Limits and identity of the server role. */
export interface ReceiverOptions {
  readonly hostname: string;
  /**
   * Once the client's input ended (`Conn.inputEnded`), commands it sent before are not run and
   * a body is not finished: for a client that never half-closes to wait for replies (our
   * provider, which defers what it did not hear a reply for and sends it again), finishing
   * them could only deliver twice (RFC 5321 §4.1.1.10 asks to abort what a lost client began).
   */
  readonly stopAtInputEnd?: boolean;
  readonly maxMessageBytes: number;
  readonly maxRecipients: number;
  /** Command line including CRLF (RFC 5321 §4.5.3.1.4). Default 512. */
  readonly maxLineBytes?: number;
  /** DATA text line including CRLF (RFC 5321 §4.5.3.1.6). Default 1000. */
  readonly maxDataLineBytes?: number;
  readonly commandTimeoutMs: number;
  /** Per read while receiving a body. Default: `commandTimeoutMs`. */
  readonly dataTimeoutMs?: number;
  /**
   * Total time for one DATA body (or one BDAT message's chunks, from its first), however often
   * bytes arrive (a chunk refused before its octets has one of its own to be skipped in); then
   * `421 4.4.2` and the end. Default: `dataDeadlineMs(maxMessageBytes)` (tests shorten it).
   */
  readonly dataDeadlineMs?: number;
  /** Protocol errors tolerated; the next one is answered, then `421 4.7.0` and the end. */
  readonly maxErrors: number;
  /**
   * Commands without progress (NOOP, HELP, VRFY, a bare RSET, repeated EHLO/HELO) tolerated
   * between two accepted messages; the next gets `421 4.7.0`. Undefined: no limit.
   */
  readonly maxIdleCommands?: number;
  /**
   * MAIL and RCPT commands tolerated between two accepted messages; the next one gets
   * `421 4.7.0` instead of its reply (session_budget.ts `maxAttemptsFor`). Undefined: no limit.
   */
  readonly maxAttempts?: number;
  readonly maxMessagesPerSession?: number;
  /** STARTTLS is offered when present and the connection is not already secure. */
  readonly tls?: { readonly secureContext: tls.SecureContext };
  /** Offer PRDR (per-recipient replies after the body; the customer after ATRN). */
  readonly offersPrdr?: boolean;
  /**
   * Say `LAST_ENDS_TRANSACTION` in EHLO (wire/ehlo.ts: the customer after ATRN, whose provider
   * then sends no RSET between pipelined messages). What it promises holds for every receiver.
   */
  readonly saysLastEnds?: boolean;
  /** Prepend a `Received:` header to every message. */
  readonly addTraceHeader: boolean;
  /** Text after `220 `; default `<hostname> ESMTP ready`. */
  readonly greeting?: string;
  /** Clock for the trace header (tests). */
  readonly now?: () => Date;
  /** AUTH required before MAIL (submission); absent: no AUTH, as on the MX. */
  readonly auth?: ReceiverAuth;
  /** Counters for refusals the receiver decides itself (limits, content). */
  readonly events?: SmtpEvents;
}

/** Why `run()` ended. */
export type EndReason =
  | "quit"
  | "eof"
  | "timeout"
  | "tooManyErrors"
  | "tooManyMessages"
  | "bareNewline"
  /** A refused BDAT chunk over the message size limit: not read, so the session is out of step. */
  | "tooBig"
  | "tlsFailed"
  | "lost"
  | "error";

/** What a session did. */
export interface ReceiverOutcome {
  readonly reason: EndReason;
  /** Messages the sink accepted (2xx at end of data). */
  readonly messagesAccepted: number;
}

/** The loop's result for one command: go on, or end the session. */
export type Step = undefined | { readonly end: EndReason };

/** A change of state, and why (logged as `from → to`). */
export interface Next {
  readonly state: SessionState;
  readonly why: string;
}

/**
 * What a command did, as a value: the receiver's loop applies it, in this order (state,
 * user, replies, error budget, end), then sends the replies or lets them wait (`flush`).
 * Handlers change no session state themselves.
 */
export interface Outcome {
  /** Replies in order; queued, so that PIPELINING sends a group's replies in one write. */
  readonly replies: readonly Reply[];
  /** The command was a peer mistake: it spends the error budget (past it, `421` and the end). */
  readonly isError?: boolean;
  /**
   * The command made no progress, though it was no mistake (DATA or BDAT refused for want of
   * recipients, an empty BDAT chunk that is not LAST): it spends the idle budget where the role
   * has one (the MX), so a client cannot repeat it forever; where it has none (fetch's receiver),
   * nothing ends.
   */
  readonly isIdle?: boolean;
  /**
   * The state after the command. Leaving a transaction (to another state, or to a new sink
   * transaction) aborts it in the sink, unless `accepted`.
   */
  readonly next?: Next;
  /** The sink took the message at the end of data: counted, and the idle budget restarts. */
  readonly accepted?: boolean;
  /**
   * The final reply to a body still to come (`SinkTransaction.finishLater`): queued after
   * `replies`, sent in its place once it resolved; counted as `accepted` only if positive.
   */
  readonly later?: Promise<Reply>;
  /** AUTH proved this user (the idle budget restarts); `null`: forget it (after STARTTLS). */
  readonly user?: string | null;
  /**
   * Whether the replies go out now: `true` even when more commands are already buffered,
   * `false` to let them wait for the rest of a pipelined group although the verb ends groups
   * (RFC 2920 §3.1); absent: as the command table says for the verb.
   */
  readonly flush?: boolean;
  /** End the session after the replies. */
  readonly end?: EndReason;
}

/** What a command handler may read and do; the receiver's loop owns everything else. */
export interface ReceiverContext {
  readonly conn: Conn;
  readonly reader: LineReader;
  readonly sink: MessageSink;
  readonly log: Logger;
  readonly options: ReceiverOptions;
  readonly state: SessionState;
  readonly checkContext: CheckContext;
  readonly sessionInfo: SessionInfo;
  /** The user AUTH proved, if any. */
  readonly authenticatedUser: string | undefined;
  /**
   * Sends the replies queued so far and `r` now, before the command's outcome: the `354`
   * before a body, the `220` before a TLS handshake (`untilSent`: on its way to the peer,
   * not only taken by the socket, when this returns).
   */
  sendNow(r: Reply, opts?: { readonly untilSent?: boolean }): Promise<void>;
  /** Sends the replies queued so far (before AUTH writes its own `334` lines). */
  flushReplies(): Promise<void>;
  /**
   * Sends the replies held for a pipelined group (those known), before a read that must wait for
   * the peer: a committed message's 250 must not wait for the next message's body to trickle in.
   * Undefined when nothing was held.
   */
  readonly sendHeld: () => Promise<void> | undefined;
}
