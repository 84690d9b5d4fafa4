/**
 * The validated configuration (README.md "Configuration"). Durations are milliseconds,
 * sizes are bytes. Everything here is already checked; no field is `unknown`.
 */

/** A listener entry: `HOST:PORT`, plain (STARTTLS offered when `tls` is set) or implicit TLS. */
export interface ListenEntry {
  readonly host: string;
  readonly port: number;
  readonly tls: "none" | "implicit";
  /** Per-listener: write one line per TLS record in the reversed ODMR phase (fetchmail needs it). */
  readonly lineRecords?: boolean;
}

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";

export interface Config {
  /** File the config came from, or undefined for the embedded defaults. */
  readonly source: string | undefined;
  readonly hostname: string;
  readonly dataDir: string;
  readonly log: { readonly level: LogLevel; readonly format: LogFormat };
  readonly tls: { readonly cert: string; readonly key: string } | undefined;
  readonly smtp: {
    readonly listen: readonly ListenEntry[];
    readonly maxMessageSize: number;
    readonly maxRecipients: number;
    readonly maxConnections: number;
    readonly maxConnectionsPerIp: number;
    readonly timeoutMs: number;
    /**
     * Longest text line of a message body the MX accepts, in octets without its CRLF
     * (`smtp.max_line_length`); a longer one gets `554 5.6.0`. At most 998 (README.md).
     */
    readonly maxLineLength: number;
  };
  readonly odmr: {
    readonly listen: readonly ListenEntry[];
    readonly requireTls: boolean;
    /** Connect → successful AUTH; then `421 4.7.0` and close. */
    readonly authTimeoutMs: number;
    /** After ATRN: longest wait for the customer to finish a message (plus its size's time). */
    readonly drainTimeoutMs: number;
  };
  readonly queue: {
    readonly maxAgeMs: number;
    /** Default per-domain quota; undefined: no limit. */
    readonly quota: QuotaLimits | undefined;
    /** Where the queue, users and state live: `data_dir/odmr.db`, or a PostgreSQL database. */
    readonly backend: "sqlite" | "postgres";
    /** With `backend: postgres`. */
    readonly postgres: PostgresConfig | undefined;
    /**
     * How long a drain's lease on its domains lasts unless renewed (the drain renews it every
     * third of that): after a node dies mid-drain, another node serves the domains this late.
     */
    readonly leaseMs: number;
    /**
     * SQLite: the space reserve serve keeps in data_dir for drains on a full disk; new mail is
     * refused while it is spent (src/queue/space_reserve.ts). 0: none.
     */
    readonly spaceReserveBytes: number;
  };
  /** Per-domain overrides (`domains:`), keyed by lower-case A-label, fully resolved. */
  readonly domains: ReadonlyMap<string, DomainPolicy>;
  readonly metrics: { readonly listen: { host: string; port: number } } | undefined;
  readonly fetch: FetchConfig | undefined;
  /** Authenticated senders (`submission:`); undefined: no submission listener. */
  readonly submission: SubmissionConfig | undefined;
  /** Delivery to the world (`outbound:`), defaults applied. */
  readonly outbound: OutboundConfig;
}

/** `submission:`: listeners and per-user limits. */
export interface SubmissionConfig {
  readonly listen: readonly ListenEntry[];
  /** Recipients per message. */
  readonly maxRecipients: number;
  /** Messages one user may submit in any hour. */
  readonly maxMessagesPerHour: number;
  /** Recipients one user may address in any hour. */
  readonly maxRecipientsPerHour: number;
  /** Connect → successful AUTH; then `421 4.7.0` and close. */
  readonly authTimeoutMs: number;
}

/** `outbound:`: how mail leaves for other domains' MX hosts. */
export interface OutboundConfig {
  /** Name server for MX lookups; undefined: the system's. */
  readonly resolver: { readonly host: string; readonly port: number } | undefined;
  /** EHLO name (default `hostname`). */
  readonly helo: string;
  /** `required`: no delivery without STARTTLS; `opportunistic`: TLS when offered. */
  readonly tls: "opportunistic" | "required";
  /** Then a failure DSN. */
  readonly maxAgeMs: number;
  /** One delay DSN after this long undelivered. */
  readonly delayNoticeMs: number;
  /** Waits between attempts (`outbound.retry`); the last one repeats. */
  readonly retryScheduleMs: readonly number[];
  /** Destinations delivered at the same time (`outbound.concurrency`). */
  readonly concurrency: number;
  /**
   * `outbound.allow_private_mx`: MX hosts at loopback, private, link-local or other non-public
   * addresses are delivered to (default false: refused, `554 5.4.4`).
   */
  readonly allowPrivateMx: boolean;
  /**
   * `outbound.own_addresses`: addresses that reach this relay through NAT or a proxy; an MX host
   * at one of them is us (RFC 5321 §5.1 loop avoidance). Default none.
   */
  readonly ownAddresses: readonly string[];
}

/** `queue.postgres`: the database shared by every `serve` node. */
export interface PostgresConfig {
  /** `postgres://USER@HOST:PORT/DB[?sslmode=…]`, without a password. */
  readonly url: string;
  /** First line is the password; undefined: none (trust, peer or a client certificate). */
  readonly passwordFile: string | undefined;
  /**
   * Connections of serve's main pool (group commits, claims, reads, users); serve opens at
   * most 7 more (body chunks, migrations and maintenance, LISTEN). Commands use their own.
   */
  readonly poolSize: number;
}

/** Limits on mail waiting for one domain; an undefined limit is no limit. */
export interface QuotaLimits {
  readonly bytes: number | undefined;
  readonly messages: number | undefined;
}

/** Retention and quota of one domain, defaults already applied. */
export interface DomainPolicy {
  readonly maxAgeMs: number;
  readonly quota: QuotaLimits | undefined;
}

export type DeliverTo =
  | { readonly kind: "smtp"; readonly host: string; readonly port: number }
  | { readonly kind: "lmtp"; readonly host: string; readonly port: number }
  | { readonly kind: "lmtpUnix"; readonly path: string }
  | { readonly kind: "maildir"; readonly path: string };

export interface FetchConfig {
  readonly server: { readonly host: string; readonly port: number };
  readonly tls: "starttls" | "implicit" | "none";
  /** A trust root (PEM file) for the provider's certificate, beside the system roots. */
  readonly ca: string | undefined;
  /** `fetch.ca_only: true`: `ca` is the only trust root (pinning), not the system roots. */
  readonly caOnly?: boolean | undefined;
  /** The name the provider's certificate must carry when `server` is an IP or another name. */
  readonly tlsServerName?: string | undefined;
  readonly user: string;
  /** Optional when `clientCert` is set (AUTH EXTERNAL); then the fallback if EXTERNAL fails. */
  readonly passwordFile: string | undefined;
  /** Our certificate (PEM file), presented in the TLS handshake for AUTH EXTERNAL. */
  readonly clientCert?: string | undefined;
  /** The private key of `clientCert` (PEM file, readable by its owner only). */
  readonly clientKey?: string | undefined;
  /** Empty: every domain the user owns (bare ATRN). */
  readonly domains: readonly string[];
  readonly deliverTo: DeliverTo;
  readonly intervalMs: number;
}
