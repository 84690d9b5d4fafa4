/**
 * The `submission:` and `outbound:` sections (mail our users send to the world). Kept apart
 * from load.ts, which hands in its validator; every error names the key path like the rest.
 */
import { isIP } from "./_ip.ts";
import { MIN_DELAY_NOTICE_MS, MIN_MAX_AGE_MS, MIN_SESSION_TIMER_MS } from "./defaults.ts";
import type { Config, ListenEntry, OutboundConfig, SubmissionConfig } from "./types.ts";

/** The validator methods these sections use (load.ts's Validator has them all). */
export interface SectionValidator {
  mapping<K extends string>(
    value: unknown,
    key: string,
    known: readonly K[],
  ): Partial<Record<K, unknown>>;
  listenList(value: unknown, key: string, tls: Config["tls"], isOdmr: boolean): ListenEntry[];
  integer(value: unknown, key: string, min: number, max: number): number;
  duration(value: unknown, key: string): number;
  timerDuration(value: unknown, key: string, minMs: number): number;
  age(value: unknown, key: string, minMs: number): number;
  oneOf<T extends string>(value: unknown, key: string, allowed: readonly T[]): T;
  hostPort(value: unknown, key: string, defaultPort?: number): { host: string; port: number };
  hostname(value: unknown, key: string): string;
  boolean(value: unknown, key: string): boolean;
  fail(key: string, detail: string): never;
}

export const SUBMISSION_KEYS = [
  "listen",
  "max_recipients",
  "max_messages_per_hour",
  "max_recipients_per_hour",
  "auth_timeout",
] as const;
export const OUTBOUND_KEYS = [
  "resolver",
  "helo",
  "tls",
  "max_age",
  "delay_notice",
  "retry",
  "concurrency",
  "allow_private_mx",
  "own_addresses",
] as const;

/** Defaults: a home server sends a few hundred messages a day, not thousands an hour. */
export const DEFAULT_SUBMISSION_MAX_RECIPIENTS = 100;
export const DEFAULT_SUBMISSION_MAX_MESSAGES_PER_HOUR = 200;
export const DEFAULT_SUBMISSION_MAX_RECIPIENTS_PER_HOUR = 1000;
/** Connect → successful AUTH on the submission port, as `odmr.auth_timeout` on the ODMR port. */
export const DEFAULT_SUBMISSION_AUTH_TIMEOUT = "60s";
export const DEFAULT_OUTBOUND_TLS = "opportunistic";
export const DEFAULT_OUTBOUND_MAX_AGE = "5d";
/** RFC 3461 leaves it open; 4 h is what Postfix (delay_warning_time) users commonly set. */
export const DEFAULT_OUTBOUND_DELAY_NOTICE = "4h";
/** The retry steps (the last repeats); ±10% jitter is added at run time. */
export const DEFAULT_OUTBOUND_RETRY = ["1m", "5m", "15m", "30m", "1h", "2h", "4h"] as const;
/** Destinations delivered at the same time. */
export const DEFAULT_OUTBOUND_CONCURRENCY = 4;
/** An MX at 127.0.0.1 or 10.x is refused: a domain's owner must not steer us inside (SSRF). */
export const DEFAULT_OUTBOUND_ALLOW_PRIVATE_MX = false;
/** More steps than this is a mistake, not a schedule. */
const MAX_RETRY_STEPS = 100;
/** DNS port when `outbound.resolver` has none. */
const DNS_PORT = 53;
/** `outbound.own_addresses`: a host reached through more NAT addresses than this is unusual. */
export const MAX_OWN_ADDRESSES = 64;

/**
 * A name server is an address (Deno.resolveDns takes `ipAddr`): looking up the resolver's own
 * name would need a resolver, the system's, which is what setting one means to avoid. So a host
 * name is refused, saying so, as resolv.conf(5) takes only addresses for `nameserver`.
 */
function resolver(v: SectionValidator, raw: unknown): { host: string; port: number } {
  const where = v.hostPort(raw, "outbound.resolver", DNS_PORT);
  const host = where.host.replace(/^\[(.*)\]$/, "$1");
  if (isIP(host) === 0) {
    v.fail(
      "outbound.resolver",
      "must be the IP address of a name server with an optional port, such as 127.0.0.1:53 " +
        "or [::1]:53, not a host name (finding its address would need a name server, as for " +
        `resolv.conf's nameserver): current value is "${String(raw)}"`,
    );
  }
  return { host, port: where.port };
}

/**
 * `outbound.own_addresses`: the addresses that reach this relay through NAT or a proxy without
 * being on one of its interfaces (Postfix's proxy_interfaces), IP addresses only (a name would
 * need a lookup at start; IPv6 may be written in brackets), no wildcard.
 */
function ownAddresses(v: SectionValidator, raw: unknown): string[] {
  const key = "outbound.own_addresses";
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.length > MAX_OWN_ADDRESSES) {
    v.fail(
      key,
      `must be a list of at most ${MAX_OWN_ADDRESSES} IP addresses, such as [203.0.113.25]`,
    );
  }
  return raw.map((item: unknown, i: number) => {
    const text = typeof item === "string" ? item.trim().replace(/^\[(.*)\]$/, "$1") : "";
    const family = isIP(text);
    const isUnspecified = family === 4 ? text === "0.0.0.0" : /^[0:]*$/.test(text);
    if (family === 0 || isUnspecified) {
      v.fail(
        `${key}[${i}]`,
        `must be an IP address of this relay (not a host name, not 0.0.0.0 or ::): current value ` +
          `is ${JSON.stringify(item)}`,
      );
    }
    return text;
  });
}

/** `outbound.retry`: a non-empty list of durations, each at least one second. */
function retrySchedule(v: SectionValidator, raw: unknown): number[] {
  const key = "outbound.retry";
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_RETRY_STEPS) {
    v.fail(key, `must be a list of 1-${MAX_RETRY_STEPS} durations such as [1m, 5m, 1h]`);
  }
  return raw.map((item: unknown, i: number) => {
    const ms = v.duration(item, `${key}[${i}]`);
    if (ms < 1000) v.fail(`${key}[${i}]`, "must be at least 1s");
    return ms;
  });
}

/** `submission:`; absent or null: no submission listener. */
export function parseSubmission(
  v: SectionValidator,
  raw: unknown,
  tls: Config["tls"],
): SubmissionConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const m = v.mapping(raw, "submission", SUBMISSION_KEYS);
  if (m.listen === undefined) v.fail("submission.listen", "is required in a submission section");
  return {
    listen: v.listenList(m.listen, "submission.listen", tls, false),
    maxRecipients: v.integer(
      m.max_recipients ?? DEFAULT_SUBMISSION_MAX_RECIPIENTS,
      "submission.max_recipients",
      1,
      100_000,
    ),
    maxMessagesPerHour: v.integer(
      m.max_messages_per_hour ?? DEFAULT_SUBMISSION_MAX_MESSAGES_PER_HOUR,
      "submission.max_messages_per_hour",
      1,
      10_000_000,
    ),
    maxRecipientsPerHour: v.integer(
      m.max_recipients_per_hour ?? DEFAULT_SUBMISSION_MAX_RECIPIENTS_PER_HOUR,
      "submission.max_recipients_per_hour",
      1,
      10_000_000,
    ),
    authTimeoutMs: v.timerDuration(
      m.auth_timeout ?? DEFAULT_SUBMISSION_AUTH_TIMEOUT,
      "submission.auth_timeout",
      MIN_SESSION_TIMER_MS,
    ),
  };
}

/** `outbound:` with its defaults (`helo` defaults to `hostname`). */
export function parseOutbound(
  v: SectionValidator,
  raw: unknown,
  hostname: string,
): OutboundConfig {
  const m = v.mapping(raw ?? {}, "outbound", OUTBOUND_KEYS);
  const maxAgeMs = v.age(m.max_age ?? DEFAULT_OUTBOUND_MAX_AGE, "outbound.max_age", MIN_MAX_AGE_MS);
  const delayNoticeMs = v.age(
    m.delay_notice ?? DEFAULT_OUTBOUND_DELAY_NOTICE,
    "outbound.delay_notice",
    MIN_DELAY_NOTICE_MS,
  );
  if (delayNoticeMs >= maxAgeMs && m.delay_notice !== undefined) {
    v.fail("outbound.delay_notice", "must be shorter than outbound.max_age");
  }
  return {
    resolver: m.resolver === undefined || m.resolver === null ? undefined : resolver(v, m.resolver),
    helo: m.helo === undefined ? hostname : v.hostname(m.helo, "outbound.helo"),
    tls: v.oneOf<"opportunistic" | "required">(m.tls ?? DEFAULT_OUTBOUND_TLS, "outbound.tls", [
      "opportunistic",
      "required",
    ]),
    maxAgeMs,
    // Never after the failure DSN: a default longer than a short max_age is capped to it.
    delayNoticeMs: Math.min(delayNoticeMs, maxAgeMs),
    retryScheduleMs: retrySchedule(v, m.retry ?? [...DEFAULT_OUTBOUND_RETRY]),
    concurrency: v.integer(
      m.concurrency ?? DEFAULT_OUTBOUND_CONCURRENCY,
      "outbound.concurrency",
      1,
      64,
    ),
    allowPrivateMx: v.boolean(
      m.allow_private_mx ?? DEFAULT_OUTBOUND_ALLOW_PRIVATE_MX,
      "outbound.allow_private_mx",
    ),
    ownAddresses: ownAddresses(v, m.own_addresses),
  };
}
