/**
 * Types shared by the provider session's modules (provider.ts and its handlers): what the
 * session needs, its states, and the context a command handler gets. No logic.
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
  /** Connect → successful AUTH, then `421 4.7.0` and close. Default 60 s. */
  readonly authTimeoutMs?: number;
  /** How long a domain stays claimed without renewal. */
  readonly leaseSeconds: number;
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

/** A handler's result: go on (undefined), or end the session. */
export type ProviderStep = undefined | { readonly end: true };

/** The end of the session. */
export const END: ProviderStep = { end: true };

/** What a command handler may use; the session loop owns everything else. */
export interface ProviderContext {
  readonly conn: Conn;
  readonly reader: LineReader;
  readonly deps: ProviderDeps;
  readonly log: Logger;
  readonly state: ProviderState;
  /** STARTTLS was said on this connection (a sign used by line_records.ts). */
  readonly saidStartTls: boolean;
  /** The one place where the state changes; logs `from → to`. */
  transition(to: ProviderState, why: string): void;
  send(r: Reply): Promise<void>;
  /** Counts a protocol error and answers `r`, or `421` and the end when the budget is spent. */
  error(r: Reply): Promise<ProviderStep>;
  /** The read deadline now (the idle timeout, or less when AUTH is due sooner). */
  readTimeoutMs(): number;
  /** STARTTLS was accepted: remembered for line_records.ts. */
  markStartTls(): void;
  /** Counts a failed AUTH on this connection; returns the count. */
  countAuthFailure(): number;
  /** AUTH succeeded: the idle budget restarts and the slot stops being evictable. */
  authenticated(): void;
}
