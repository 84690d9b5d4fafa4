/**
 * The provider's Prometheus metrics (README.md "Metrics and health") on a private prom-client Registry.
 * Loaded only when `metrics:` is set (serve imports it dynamically; unserved_metrics.ts otherwise).
 * Sessions report through the OdmrEvents / SmtpEvents shapes (implemented here structurally, so
 * observe/ imports nothing above it); queue gauges are read from the store at scrape time.
 * Cardinality is bounded: `domain` only for domains some user owns (the rest sum into
 * `domain="other"`), `user` only for existing users ("" for a peer that never authenticated).
 */
import client from "prom-client";
import type { Logger } from "./log.ts";
import { NULL_LOGGER } from "./log.ts";
import { PROMETHEUS_CONTENT_TYPE } from "./_fetch_metrics.ts";
import { type AtrnSuccessStore, keepAtrnSuccess } from "./unserved_metrics.ts";
export { FetchMetrics, PROMETHEUS_CONTENT_TYPE } from "./_fetch_metrics.ts";
export type { FetchPollReport } from "./_fetch_metrics.ts";

/** Label value that holds queue totals of domains no user owns any more. */
export const OTHER_DOMAIN = "other";
/**
 * Destination domains of the outbound gauges with a label of their own (most messages first);
 * the rest sum into `domain="other"`: anyone may be written to, the label set stays bounded.
 */
export const MAX_OUTBOUND_DOMAIN_LABELS = 100;
const OUTBOUND_OUTCOMES = ["delivered", "deferred", "failed"] as const;

/** A user and the domains it owns (CredentialStore.listUsers()). */
export interface UserDomains {
  readonly name: string;
  readonly domains: readonly string[];
}

/** Waiting mail of one domain (QueueStore.domainStats()). */
export interface DomainQueueStats {
  readonly domain: string;
  /** "mx": waiting for delivery to the world, not for ATRN (left out of these gauges). */
  readonly route?: "atrn" | "mx";
  readonly messages: number;
  readonly bytes: number;
  /** Milliseconds since the epoch. */
  readonly oldestReceivedAt: number;
}

export type { AtrnSuccessStore } from "./unserved_metrics.ts";

/** What the metrics read at scrape time. */
export interface RelayMetricsOptions {
  readonly users: () => readonly UserDomains[];
  readonly domainStats: () => Promise<readonly DomainQueueStats[]> | readonly DomainQueueStats[];
  readonly atrnState?: AtrnSuccessStore;
  /** Clock in ms since the epoch (tests inject one). */
  readonly now?: () => number;
  readonly log?: Logger;
}

/** ATRN outcomes counted (the same words as src/odmr/events.ts `AtrnOutcome`). */
export type AtrnOutcomeLabel = "250" | "450" | "451" | "453" | "530" | "535";

/** Which listener a connection came in on. */
export type ConnectionProto = "smtp" | "odmr";

const INGEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const DRAIN_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];
const RCPT_REASONS = [
  "relay_denied",
  "routing",
  "address_literal",
  "postmaster",
  "too_many_recipients",
  "quota",
  "other",
] as const;
const REFUSE_REASONS = ["storage_full", "quota", "local_error", "size", "content", "loop"] as const;

/** The provider's registry and the event sinks that feed it. */
export class RelayMetrics {
  readonly registry = new client.Registry();
  readonly #opts: RelayMetricsOptions;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #lastSuccess: Map<string, number>;
  /** ATRN 250 times per user not yet matched by drainFinished (drain duration). */
  readonly #drainStarts = new Map<string, number[]>();

  readonly #queueMessages: client.Gauge;
  readonly #queueBytes: client.Gauge;
  readonly #queueOldest: client.Gauge;
  readonly #received: client.Counter;
  readonly #receivedBytes: client.Counter;
  readonly #delivered: client.Counter;
  readonly #rcptRejected: client.Counter;
  readonly #refused: client.Counter;
  readonly #atrn: client.Counter;
  readonly #lastAtrn: client.Gauge;
  readonly #authFailures: client.Counter;
  readonly #expired: client.Counter;
  readonly #dsn: client.Counter;
  readonly #connections: client.Gauge;
  readonly #ingest: client.Histogram;
  readonly #drain: client.Histogram;
  readonly #tlsCertExpiry: client.Gauge;
  readonly #outboundMessages: client.Gauge;
  readonly #outboundOldest: client.Gauge;
  readonly #outboundDeliveries: client.Counter;

  constructor(opts: RelayMetricsOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log ?? NULL_LOGGER;
    this.#lastSuccess = new Map(opts.atrnState?.lastAtrnSuccesses() ?? []);
    const registers = [this.registry];
    const gauge = (name: string, help: string, labelNames: string[]) =>
      new client.Gauge({ name: `odmr_relay_${name}`, help, labelNames, registers });
    const counter = (name: string, help: string, labelNames: string[]) =>
      new client.Counter({ name: `odmr_relay_${name}`, help, labelNames, registers });
    this.#queueMessages = gauge("queue_messages", "Messages waiting per domain.", ["domain"]);
    this.#queueBytes = gauge("queue_bytes", "Bytes of messages waiting per domain.", ["domain"]);
    this.#queueOldest = gauge(
      "queue_oldest_seconds",
      "Age of the oldest waiting message per domain.",
      ["domain"],
    );
    this.#received = counter(
      "messages_received_total",
      "Messages accepted into the queue, per recipient domain.",
      ["domain"],
    );
    this.#receivedBytes = counter(
      "bytes_received_total",
      "Bytes of messages accepted into the queue, per recipient domain.",
      ["domain"],
    );
    this.#delivered = counter(
      "messages_delivered_total",
      "Recipients delivered to the customer over ATRN, per domain.",
      ["domain"],
    );
    this.#rcptRejected = counter("rcpt_rejected_total", "RCPT TO refused, by reason.", [
      "reason",
    ]);
    this.#refused = counter(
      "messages_refused_total",
      "Messages refused at the end of data, by reason.",
      ["reason"],
    );
    this.#atrn = counter("atrn_total", "ATRN sessions by outcome (535: failed AUTH).", [
      "user",
      "outcome",
    ]);
    this.#lastAtrn = gauge(
      "last_atrn_success_timestamp_seconds",
      "When the user last collected its mail (ATRN drain finished, or 453 no mail).",
      ["user"],
    );
    this.#authFailures = counter("auth_failures_total", "Failed AUTH on the ODMR port.", [
      "mechanism",
    ]);
    this.#expired = counter(
      "recipients_expired_total",
      "Recipients that reached their domain's max_age undelivered.",
      [],
    );
    this.#dsn = counter("dsn_total", "Failure reports for expired mail, by what became of them.", [
      "outcome",
    ]);
    this.#connections = gauge("connections", "Connections open, per listener protocol.", [
      "proto",
    ]);
    this.#ingest = new client.Histogram({
      name: "odmr_relay_ingest_latency_seconds",
      help: "From the end of DATA to the commit that makes the message durable (before 250).",
      buckets: INGEST_BUCKETS,
      registers,
    });
    this.#drain = new client.Histogram({
      name: "odmr_relay_drain_duration_seconds",
      help: "From the 250 to ATRN to the end of the drain.",
      buckets: DRAIN_BUCKETS,
      registers,
    });
    this.#tlsCertExpiry = gauge(
      "tls_cert_expiry_timestamp_seconds",
      "When the certificate in use (tls.cert) expires; 0 without tls.",
      [],
    );
    this.#outboundMessages = gauge(
      "outbound_queue_messages",
      "Messages waiting for delivery to the world, per destination domain.",
      ["domain"],
    );
    this.#outboundOldest = gauge(
      "outbound_queue_oldest_seconds",
      "Age of the oldest message waiting for delivery to the world, per destination domain.",
      ["domain"],
    );
    this.#outboundDeliveries = counter(
      "outbound_deliveries_total",
      "Recipient delivery attempts to the world, by outcome.",
      ["outcome"],
    );
    for (const outcome of OUTBOUND_OUTCOMES) this.#outboundDeliveries.inc({ outcome }, 0);
    // Fixed label sets start at 0, so rate() and alerts see them before the first event.
    for (const reason of RCPT_REASONS) this.#rcptRejected.inc({ reason }, 0);
    for (const reason of REFUSE_REASONS) this.#refused.inc({ reason }, 0);
    for (const proto of ["smtp", "odmr"]) this.#connections.set({ proto }, 0);
    for (const outcome of ["queued", "dropped"]) this.#dsn.inc({ outcome }, 0);
  }

  /** The certificate now in use expires at `notAfter` (at start and at each reload). */
  tlsCertificate(notAfter: Date): void {
    this.#tlsCertExpiry.set(Math.floor(notAfter.getTime() / 1000));
  }

  /** OdmrEvents (src/odmr/events.ts) for the provider sessions. */
  readonly odmr = {
    atrn: (user: string, outcome: AtrnOutcomeLabel): void => {
      this.#atrn.inc({ user, outcome });
      if (outcome === "250") this.#pushDrainStart(user);
      // "No mail" is a successful collection too: the customer is alive and up to date.
      if (outcome === "453") this.#recordSuccess(user);
    },
    authFailure: (mechanism: string): void => {
      this.#authFailures.inc({ mechanism });
      // README.md counts a failed AUTH on the ODMR port as ATRN outcome 535 (no user known).
      this.#atrn.inc({ user: "", outcome: "535" });
    },
    delivered: (domain: string): void => {
      this.#delivered.inc({ domain });
    },
    drainFinished: (user: string, _delivered: number): void => {
      const started = this.#drainStarts.get(user)?.shift();
      if (started !== undefined) this.#drain.observe((this.#now() - started) / 1000);
      this.#recordSuccess(user);
    },
  };

  /** SmtpEvents (src/smtp/events.ts) for the inbound queue sink. */
  readonly smtp = {
    messageQueued: (
      event: { domains: readonly string[]; bytes: number; commitSeconds: number },
    ): void => {
      for (const domain of new Set(event.domains)) {
        this.#received.inc({ domain });
        this.#receivedBytes.inc({ domain }, event.bytes);
      }
      this.#ingest.observe(event.commitSeconds);
    },
    rcptRejected: (reason: string): void => {
      this.#rcptRejected.inc({ reason: rcptLabel(reason) });
    },
    messageRefused: (reason: string): void => {
      this.#refused.inc({ reason: REFUSE_REASONS.find((r) => r === reason) ?? "local_error" });
    },
  };

  /** OutboundEvents (src/outbound/_batch.ts) for the outbound worker. */
  readonly outbound = {
    delivery: (outcome: "delivered" | "deferred" | "failed"): void => {
      this.#outboundDeliveries.inc({ outcome });
    },
  };

  /** A queue maintenance pass ended (expiry counts; `queued`: DSN kept for a local sender). */
  maintenance(report: { expiredRecipients: number; dsnQueued: number; dsnDropped: number }): void {
    this.#expired.inc(report.expiredRecipients);
    this.#dsn.inc({ outcome: "queued" }, report.dsnQueued);
    this.#dsn.inc({ outcome: "dropped" }, report.dsnDropped);
  }

  /** A connection was accepted on a listener of `proto`. */
  connectionOpened(proto: ConnectionProto): void {
    this.#connections.inc({ proto });
  }

  /** A connection counted by `connectionOpened` ended. */
  connectionClosed(proto: ConnectionProto): void {
    this.#connections.dec({ proto });
  }

  /** The Prometheus text exposition, with the queue and user gauges read now. */
  async expose(): Promise<string> {
    await this.#refreshGauges();
    return await this.registry.metrics();
  }

  /** Content type of `expose()`. */
  readonly contentType = PROMETHEUS_CONTENT_TYPE;

  async #refreshGauges(): Promise<void> {
    let users: readonly UserDomains[] | undefined;
    let stats: readonly DomainQueueStats[] | undefined;
    try {
      users = this.#opts.users();
      stats = await this.#opts.domainStats();
    } catch (err) {
      // Counters are still worth serving; /healthz says what is wrong with the database.
      this.#log.error("metrics_scrape_failed", { error: String(err) });
    }
    // Reset after the wait: two scrapes at once must not leave a half-filled gauge.
    this.#queueMessages.reset();
    this.#queueBytes.reset();
    this.#queueOldest.reset();
    this.#lastAtrn.reset();
    this.#outboundMessages.reset();
    this.#outboundOldest.reset();
    if (users === undefined || stats === undefined) return;
    this.#setOutboundGauges(stats.filter((s) => s.route === "mx"));
    const owned = new Set(users.flatMap((u) => u.domains));
    const totals = new Map<string, { messages: number; bytes: number; oldest: number }>();
    for (const s of stats) {
      if (s.route === "mx") continue;
      const domain = owned.has(s.domain) ? s.domain : OTHER_DOMAIN;
      const t = totals.get(domain);
      if (t === undefined) {
        totals.set(domain, { messages: s.messages, bytes: s.bytes, oldest: s.oldestReceivedAt });
      } else {
        t.messages += s.messages;
        t.bytes += s.bytes;
        t.oldest = Math.min(t.oldest, s.oldestReceivedAt);
      }
    }
    // An owned domain with nothing waiting reads 0, so "drained" is visible, not absent.
    for (const domain of owned) {
      if (!totals.has(domain)) totals.set(domain, { messages: 0, bytes: 0, oldest: this.#now() });
    }
    const now = this.#now();
    for (const [domain, t] of totals) {
      this.#queueMessages.set({ domain }, t.messages);
      this.#queueBytes.set({ domain }, t.bytes);
      this.#queueOldest.set(
        { domain },
        t.messages === 0 ? 0 : Math.max(0, (now - t.oldest) / 1000),
      );
    }
    for (const user of users) {
      const at = this.#lastSuccess.get(user.name);
      if (at !== undefined) this.#lastAtrn.set({ user: user.name }, at / 1000);
    }
  }

  /** One series per destination domain, the largest first, the rest summed into "other". */
  #setOutboundGauges(stats: readonly DomainQueueStats[]): void {
    const now = this.#now();
    const sorted = [...stats].sort((a, b) => b.messages - a.messages);
    const shown = sorted.slice(0, MAX_OUTBOUND_DOMAIN_LABELS);
    const rest = sorted.slice(MAX_OUTBOUND_DOMAIN_LABELS);
    const age = (at: number) => Math.max(0, (now - at) / 1000);
    for (const s of shown) {
      this.#outboundMessages.set({ domain: s.domain }, s.messages);
      this.#outboundOldest.set({ domain: s.domain }, age(s.oldestReceivedAt));
    }
    if (rest.length > 0) {
      const messages = rest.reduce((n, s) => n + s.messages, 0);
      const oldest = rest.reduce((at, s) => Math.min(at, s.oldestReceivedAt), Infinity);
      this.#outboundMessages.set({ domain: OTHER_DOMAIN }, messages);
      this.#outboundOldest.set({ domain: OTHER_DOMAIN }, age(oldest));
    }
  }

  #pushDrainStart(user: string): void {
    const starts = this.#drainStarts.get(user) ?? [];
    starts.push(this.#now());
    this.#drainStarts.set(user, starts);
  }

  #recordSuccess(user: string): void {
    if (user === "") return;
    const at = this.#now();
    this.#lastSuccess.set(user, at);
    // A failed write loses only the restart-survival of one timestamp; the gauge itself is set.
    keepAtrnSuccess(this.#opts.atrnState, user, at, this.#log);
  }
}

/** The label itself when it is one of the fixed set, else `other` (bounded cardinality). */
function rcptLabel(reason: string): (typeof RCPT_REASONS)[number] {
  return RCPT_REASONS.find((r) => r === reason) ?? "other";
}
