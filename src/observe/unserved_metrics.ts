/**
 * What `serve` counts when `metrics:` is not set: nothing, and prom-client is not even loaded
 * (it costs start-up time and resident memory). Only the last successful ATRN per user is
 * still written down, so that `odmr_relay_last_atrn_success_timestamp_seconds` is right from
 * the first scrape once metrics are turned on. Same surface as RelayMetrics (metrics.ts).
 */
import type { Logger } from "./log.ts";
import { NULL_LOGGER } from "./log.ts";

/** Content type of the Prometheus text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Where the last successful ATRN per user is kept across restarts (src/queue/user_state.ts). */
export interface AtrnSuccessStore {
  recordAtrnSuccess(user: string, atMs: number): void;
  lastAtrnSuccesses(): ReadonlyMap<string, number>;
}

/** Persists one user's successful collection; a failed write is logged, never thrown. */
export function keepAtrnSuccess(
  state: AtrnSuccessStore | undefined,
  user: string,
  atMs: number,
  log: Logger,
): void {
  try {
    state?.recordAtrnSuccess(user, atMs);
  } catch (err) {
    // Only the restart-survival of one timestamp is lost.
    log.warn("metrics_state_write_failed", { user, error: String(err) });
  }
}

/** Metrics that are not served: only the last ATRN success per user is kept. */
export class UnservedMetrics {
  readonly contentType = PROMETHEUS_CONTENT_TYPE;
  readonly #state: AtrnSuccessStore | undefined;
  readonly #now: () => number;
  readonly #log: Logger;

  constructor(opts: { atrnState?: AtrnSuccessStore; now?: () => number; log?: Logger } = {}) {
    this.#state = opts.atrnState;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log ?? NULL_LOGGER;
  }

  #success(user: string): void {
    if (user !== "") keepAtrnSuccess(this.#state, user, this.#now(), this.#log);
  }

  /** OdmrEvents (src/odmr/events.ts): "no mail" and a finished drain are collections. */
  readonly odmr = {
    atrn: (user: string, outcome: string): void => {
      if (outcome === "453") this.#success(user);
    },
    authFailure: (_mechanism: string): void => {},
    delivered: (_domain: string): void => {},
    drainFinished: (user: string, _delivered: number): void => this.#success(user),
  };

  /** SmtpEvents (src/smtp/events.ts): not counted. */
  readonly smtp = {
    messageQueued: (_event: unknown): void => {},
    rcptRejected: (_reason: string): void => {},
    messageRefused: (_reason: string): void => {},
  };

  /** OutboundEvents (src/outbound/_batch.ts): not counted. */
  readonly outbound = {
    delivery: (_outcome: "delivered" | "deferred" | "failed"): void => {},
  };

  maintenance(
    _report: { expiredRecipients: number; dsnQueued: number; dsnDropped: number },
  ): void {}
  connectionOpened(_proto: string): void {}
  connectionClosed(_proto: string): void {}
  tlsCertificate(_notAfter: Date): void {}

  /** Nothing is exposed (no metrics server runs without `metrics:`). */
  expose(): Promise<string> {
    return Promise.resolve("");
  }
}
