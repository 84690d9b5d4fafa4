/**
 * The embedded defaults (README.md): what `serve` runs on with no config file at all.
 * Safe on a laptop: loopback only, unprivileged ports, no TLS, metrics off. Code, not a file,
 * so `deno compile` needs nothing beside the binary.
 */

/** Environment variable naming the config file (README.md discovery order). */
export const CONFIG_ENV_VAR = "ODMR_RELAY_CONFIG";
/** Looked for in the working directory when neither `--config` nor the variable is given. */
export const DEFAULT_CONFIG_FILE = "config.yaml";

export const DEFAULT_DATA_DIR = "./data";
export const DEFAULT_SMTP_LISTEN: readonly string[] = ["127.0.0.1:2525"];
export const DEFAULT_ODMR_LISTEN: readonly string[] = ["127.0.0.1:3366"];
export const DEFAULT_LOG_LEVEL = "info";
export const DEFAULT_LOG_FORMAT = "text";

export const DEFAULT_MAX_MESSAGE_SIZE = "50MB";
export const DEFAULT_MAX_RECIPIENTS = 100;
export const DEFAULT_MAX_CONNECTIONS = 200;
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 20;
export const DEFAULT_SMTP_TIMEOUT = "5m";
/** RFC 5322 §2.1.1 / RFC 5321 §4.5.3.1.6: 998 octets and CRLF; also the most we allow. */
export const DEFAULT_SMTP_MAX_LINE_LENGTH = 998;
/** The shortest `smtp.max_line_length` (RFC 5322 §2.1.1's recommended 78). */
export const MIN_SMTP_MAX_LINE_LENGTH = 78;
export const DEFAULT_ODMR_REQUIRE_TLS = false;
export const DEFAULT_ODMR_AUTH_TIMEOUT = "60s";
/** After ATRN: the customer finishes a message at least this often (src/odmr/_drain_deadline.ts). */
export const DEFAULT_ODMR_DRAIN_TIMEOUT = "10m";
/**
 * The longest `smtp.timeout`, `odmr.auth_timeout` and `fetch.interval`: 24d, under the 2^31-1 ms
 * a timer can wait (Deno fires a longer one after 1 ms).
 */
export const MAX_TIMER_MS = 24 * 86_400_000;
/**
 * The shortest `smtp.timeout` and `odmr.auth_timeout`: shorter cut sessions before a client on
 * an ordinary link can answer (1ms cut every session before its first command).
 */
export const MIN_SESSION_TIMER_MS = 1000;
/** The shortest `fetch.interval`: shorter is a loop on the provider, not a poll. */
export const MIN_FETCH_INTERVAL_MS = 10_000;
export const DEFAULT_QUEUE_MAX_AGE = "30d";
/**
 * The shortest `queue.max_age`, a domain's `max_age` and `outbound.max_age`: shorter bounced
 * mail at the next maintenance pass (each minute) before a customer polling at `fetch.interval`
 * could collect it, or before a greylisting receiver's "try again in minutes" came round.
 */
export const MIN_MAX_AGE_MS = 3_600_000;
/** The shortest `outbound.delay_notice`: shorter reports mail that only waits its first retries. */
export const MIN_DELAY_NOTICE_MS = 30 * 60_000;
/**
 * The longest of those ages (3650d): a longer one ran past the last date JavaScript can hold, and
 * delay reports said `Will-Retry-Until: Invalid Date`.
 */
export const MAX_AGE_MS = 3650 * 86_400_000;
export const DEFAULT_QUEUE_LEASE_TIME = "5m";
/** The space reserve serve keeps in data_dir for drains on a full disk (src/queue/space_reserve.ts). */
export const DEFAULT_QUEUE_SPACE_RESERVE = "8MB";
/** Connections of serve's main PostgreSQL pool (`queue.postgres.pool_size`). */
export const DEFAULT_PG_POOL_SIZE = 8;
export const MAX_PG_POOL_SIZE = 100;

export const DEFAULT_FETCH_TLS = "starttls";
export const DEFAULT_FETCH_DELIVER_TO = "smtp://127.0.0.1:25";
export const DEFAULT_FETCH_INTERVAL = "5m";
/** ODMR's registered port (RFC 2645 §4), used when `fetch.server` has no port. */
export const ODMR_PORT = 366;
