/**
 * What `serve` hands every session handler (the MX and the ODMR port), in a module of its own
 * so that serve.ts and its handlers (_serve_smtp.ts, _serve_odmr.ts) do not import each other.
 */
import type tls from "node:tls";
import type { Config } from "../config/types.ts";
import type { QueueStore } from "../queue/types.ts";
import type { CredentialStore } from "../auth/store.ts";
import type { Logger } from "../observe/log.ts";
import type { RelayMetrics } from "../observe/metrics.ts";
import type { UnservedMetrics } from "../observe/unserved_metrics.ts";
import type { DiskFullness } from "./_serve_disk.ts";

/** What every session handler gets. */
export interface ServeDeps {
  readonly config: Config;
  readonly store: QueueStore;
  readonly credentials: CredentialStore;
  readonly log: Logger;
  /**
   * The certificate for new handshakes. serve makes this a getter over the reloadable pair:
   * each connection copies (spreads) the deps when it starts and so keeps its context.
   */
  readonly secureContext: tls.SecureContext | undefined;
  /**
   * The key of the SCRAM salts of unknown names (the backend's: shared by every node on
   * PostgreSQL); absent: the one in `data_dir`.
   */
  readonly fakeSaltKey?: Uint8Array;
  /** Metrics fed by the sessions and served on `metrics.listen` (when configured). */
  readonly observe?: ServeObserve;
  /** The outbound worker, woken when a submission queued mail for the world. */
  readonly outbound?: { wake(): void };
  /** Counts the sessions of every port while they run (see `OpenSessions`). */
  readonly sessions?: OpenSessions;
  /** Told of each message refused for lack of space (/healthz, _serve_disk.ts). */
  readonly disk?: DiskFullness;
}

/**
 * Sessions open right now, on every port. With at most one, a queue commit may sync on the
 * event loop (nobody else waits for it, and the hand-off to a thread costs the lone sender).
 */
export class OpenSessions {
  open = 0;
  /** Told when a session opens or ends (serve's QuietCollector). */
  onActivity: (() => void) | undefined;

  /** A session opened. */
  enter(): void {
    this.open++;
    this.onActivity?.();
  }

  /** A session ended. */
  leave(): void {
    this.open--;
    this.onActivity?.();
  }

  /** True when no session but (at most) the caller's is open. */
  isAlone(): boolean {
    return this.open <= 1;
  }
}

/** The metrics of a server and how `/healthz` asks the database. */
export interface ServeObserve {
  readonly metrics: RelayMetrics | UnservedMetrics;
  /** Rejects when the database does not answer. */
  readonly pingDatabase: () => Promise<void>;
}
