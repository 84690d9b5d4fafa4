/**
 * The customer's (`fetch` loop) own metrics: last success, recipients delivered, failures by
 * reason. A private Registry like the provider's; `--once` runs expose nothing (they exit).
 */
import client from "prom-client";
import { PROMETHEUS_CONTENT_TYPE } from "./unserved_metrics.ts";
export { PROMETHEUS_CONTENT_TYPE };

/** What one poll reports (src/odmr/customer.ts FetchOutcome, structurally). */
export interface FetchPollReport {
  readonly exitCode: number;
  /** `delivered`, `noMail`, `authFailed`, `refused`, `temporary`, `config`. */
  readonly result: string;
  readonly delivered: number;
}

const FAILURE_REASONS = ["auth_failed", "refused", "temporary", "config", "other"] as const;
type FailureReason = (typeof FAILURE_REASONS)[number];

/** Metrics of the `fetch` loop. */
export class FetchMetrics {
  readonly registry = new client.Registry();
  readonly contentType = PROMETHEUS_CONTENT_TYPE;
  readonly #now: () => number;
  readonly #lastSuccess: client.Gauge;
  readonly #delivered: client.Counter;
  readonly #failures: client.Counter;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
    const registers = [this.registry];
    this.#lastSuccess = new client.Gauge({
      name: "odmr_relay_fetch_last_success_timestamp_seconds",
      help: "When a poll last completed (mail delivered, or none waiting).",
      registers,
    });
    this.#delivered = new client.Counter({
      name: "odmr_relay_fetch_delivered_total",
      help: "Recipients handed to the local side and acknowledged to the provider.",
      registers,
    });
    this.#failures = new client.Counter({
      name: "odmr_relay_fetch_failures_total",
      help: "Polls that failed, by reason.",
      labelNames: ["reason"],
      registers,
    });
    for (const reason of FAILURE_REASONS) this.#failures.inc({ reason }, 0);
  }

  /** Counts one poll. */
  recordPoll(report: FetchPollReport): void {
    if (report.delivered > 0) this.#delivered.inc(report.delivered);
    if (report.exitCode === 0) {
      this.#lastSuccess.set(this.#now() / 1000);
    } else {
      this.#failures.inc({ reason: failureReason(report.result) });
    }
  }

  /** The Prometheus text exposition. */
  async expose(): Promise<string> {
    return await this.registry.metrics();
  }
}

function failureReason(result: string): FailureReason {
  switch (result) {
    case "authFailed":
      return "auth_failed";
    case "refused":
    case "temporary":
    case "config":
      return result;
    default:
      return "other";
  }
}
