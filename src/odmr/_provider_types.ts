/**
 * Types shared by the provider session's modules (provider.ts and its handlers): what the
 * session needs, its states, what a command handler may read (ProviderContext) and what it
 * returns (ProviderOutcome). No logic.
 */
import type tls from "node:tls";
import type { Conn } from "../net/conn.ts";
import type { LineReader } from "../wire/line_reader.ts";
import type { Reply } from "../wire/reply.ts";
import type { QueueStore } from "../queue/types.ts";
import type { CredentialStore } from "../auth/store.ts";
import type { AuthThrottle } from "../auth/throttle.ts";
import type { Logger } from "../observe/log.ts";
import type { OdmrEvents } from "./events.ts";

/** What the provider session needs. */
export interface ProviderDeps {
  readonly store: QueueStore;
  readonly credentials: CredentialStore;
  /** Derives SCRAM salts for unknown user names; default: a key per process. */
  readonly fakeSaltKey?: Uint8Array;
  readonly throttle: AuthThrottle;
  readonly log: Logger;
  readonly events?: OdmrEvents;
  /** Called once AUTH succeeded (the connection's slot stops being evictable). */
  readonly onAuthenticated?: () => void;
  /** Milliseconds since the epoch, for the AUTH deadline; `Date.now` by default (tests move it). */
  readonly now?: () => number;
  readonly options: ProviderOptions;
}

/** Per-listener settings. */
export interface ProviderOptions {
  readonly hostname: string;
  /** STARTTLS offered when set and the connection is not already secure. */
  readonly secureContext?: tls.SecureContext;
  /** AUTH (and so ATRN) only once TLS is up. */
  readonly requireTls: boolean;
  /**
   * Under TLS, write one line per TLS record while draining (fetchmail over implicit TLS);
   * absent: decided per session by wantsLineRecords (line_records.ts).
   */
  readonly lineRecords?: boolean;
  readonly commandTimeoutMs: number;
  /** Connect (again: STARTTLS) → successful AUTH, then `421 4.7.0` and close. Default 60 s. */
  readonly authTimeoutMs?: number;
  /** How long a domain stays claimed without renewal. */
  readonly leaseSeconds: number;
  /** After ATRN: the customer finishes a message at least this often (`odmr.drain_timeout`). */
  readonly drainTimeoutMs?: number;
}

/** Where the session is (RFC 2645 §5): reversed is the end of the server role. */
export type ProviderState =
  | { readonly kind: "initial" }
  | { readonly kind: "greeted"; readonly ehlo: string }
  | {
    readonly kind: "authenticated";
    readonly ehlo: string;
    readonly user: string;
    readonly mechanism: string;
  }
  | { readonly kind: "reversed"; readonly user: string };

export type ProviderStateKind = ProviderState["kind"];

/** A change of state, and why (logged as `from → to`). */
export interface ProviderNext {
  readonly state: ProviderState;
  readonly why: string;
}

/**
 * After `250` to ATRN the provider becomes the SMTP client on the same connection. The loop
 * enters `reversed`, writes the `250` (flushed: nothing may be pipelined across the reversal),
 * runs `run` (the drain), and calls `release` in every case, also when the `250` could not be
 * written. The session ends after it.
 */
export interface Reversal {
  run(): Promise<void>;
  release(): Promise<void>;
}

/**
 * What a command did, as a value: the session loop in provider.ts applies it, in this order
 * (state, AUTH bookkeeping and its failure limit, error budget, replies, reversal, end). Handlers change no session
 * state themselves.
 */
export interface ProviderOutcome {
  /** Replies in order, written together. */
  readonly replies: readonly Reply[];
  /**
   * The command was a peer mistake: it spends the error budget shared with the MX
   * (src/smtp/session_budget.ts). Past it the replies are replaced by `421` and the end.
   */
  readonly isError?: boolean;
  /** The state after the command. */
  readonly next?: ProviderNext;
  /** AUTH succeeded: the idle budget restarts and the slot stops being evictable. */
  readonly isAuthenticated?: boolean;
  /**
   * A checked AUTH failed: counted on the connection; at `MAX_AUTH_FAILURES` the replies are
   * replaced by `421` and the end.
   */
  readonly isAuthFailure?: boolean;
  /** STARTTLS was accepted on this connection (a sign line_records.ts uses). */
  readonly saidStartTls?: boolean;
  /** The provider becomes the client (ATRN `250`). */
  readonly reversal?: Reversal;
  /** End the session after the replies. */
  readonly end?: boolean;
}

/** What a command handler may read and do; the session loop owns everything else. */
export interface ProviderContext {
  readonly conn: Conn;
  readonly reader: LineReader;
  readonly deps: ProviderDeps;
  readonly log: Logger;
  readonly state: ProviderState;
  /** STARTTLS was said on this connection (a sign used by line_records.ts). */
  readonly saidStartTls: boolean;
  /** The read deadline now (the idle timeout, or less when AUTH is due sooner). */
  readTimeoutMs(): number;
  /** Writes `r` now, before the command's outcome: the `220` before a TLS handshake. */
  sendNow(r: Reply): Promise<void>;
}
