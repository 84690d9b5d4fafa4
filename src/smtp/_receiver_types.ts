/**
 * Types shared by the SMTP server role's modules: its options, how a session ends and what a
 * command handler returns. No logic.
 */
import type { SmtpEvents } from "./events.ts";
import type tls from "node:tls";
import type { Conn } from "../net/conn.ts";
import type { LineReader } from "../wire/line_reader.ts";
import type { Reply } from "../wire/reply.ts";

/**
 * SMTP AUTH (RFC 4954) for a receiver that requires it (the submission port): with it, the
 * receiver offers AUTH in EHLO and refuses MAIL with `530 5.7.0` until AUTH succeeded. The
 * exchange, its throttling and its logs are the hook's; the receiver only keeps the user.
 */
export interface ReceiverAuth {
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
  /** The session must end, after `reply` if there is one. */
  | { readonly kind: "end"; readonly reply?: Reply };

/** Limits and identity of the server role. */
export interface ReceiverOptions {
  readonly hostname: string;
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
   * Total time for one DATA body (or one BDAT chunk), however often bytes arrive; then
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
  readonly maxMessagesPerSession?: number;
  /** STARTTLS is offered when present and the connection is not already secure. */
  readonly tls?: { readonly secureContext: tls.SecureContext };
  /** Offer PRDR (per-recipient replies after the body; the customer after ATRN). */
  readonly offersPrdr?: boolean;
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
  | "tlsFailed"
  | "lost"
  | "error";

/** What a session did. */
export interface ReceiverOutcome {
  readonly reason: EndReason;
  /** Messages the sink accepted (2xx at end of data). */
  readonly messagesAccepted: number;
}

/** A handler's result: go on, or end the session. */
export type Step = undefined | { readonly end: EndReason };
