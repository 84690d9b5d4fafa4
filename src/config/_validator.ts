/**
 * The config validator: narrows `unknown` YAML values section by section, failing with a
 * ConfigError that names the file and the key path; the known keys of the sections it parses.
 * Used by load.ts, which finds and reads the file, and by `_fetch.ts` and `_outbound.ts`.
 */
import * as path from "../posix_path.ts";
import { domainToAscii } from "../wire/idna.ts";
import type { Config, DomainPolicy, ListenEntry, PostgresConfig, QuotaLimits } from "./types.ts";
import { didYouMean } from "./_did_you_mean.ts";
import { formatDuration, parseDurationMs, parseSizeBytes } from "./_units.ts";
import * as D from "./defaults.ts";

/** A config that cannot be used; `message` is for people (exit code 2). */
export class ConfigError extends Error {
  /** The file, or undefined for the embedded defaults. */
  readonly file: string | undefined;
  /** Dotted key path (`smtp.listen[1]`), or undefined when the file itself is the problem. */
  readonly keyPath: string | undefined;
  constructor(file: string | undefined, keyPath: string | undefined, detail: string) {
    const where = file === undefined ? "(embedded defaults)" : `"${file}"`;
    super(`Cannot load config ${where}: ${keyPath === undefined ? "" : keyPath + " "}${detail}`);
    this.name = "ConfigError";
    this.file = file;
    this.keyPath = keyPath;
  }
}

export const TOP_KEYS = [
  "hostname",
  "data_dir",
  "log",
  "tls",
  "smtp",
  "odmr",
  "queue",
  "metrics",
  "fetch",
  "domains",
  "submission",
  "outbound",
] as const;
export const LOG_KEYS = ["level", "format"] as const;
export const TLS_KEYS = ["cert", "key"] as const;
export const SMTP_KEYS = [
  "listen",
  "max_message_size",
  "max_recipients",
  "max_connections",
  "max_connections_per_ip",
  "timeout",
  "max_line_length",
] as const;
export const ODMR_KEYS = ["listen", "require_tls", "auth_timeout", "drain_timeout"] as const;
export const QUEUE_KEYS = [
  "max_age",
  "quota",
  "backend",
  "postgres",
  "lease_time",
  "space_reserve",
] as const;
export const POSTGRES_KEYS = ["url", "password_file", "pool_size"] as const;
export const QUOTA_KEYS = ["bytes", "messages"] as const;
export const DOMAIN_KEYS = ["max_age", "quota"] as const;
export const METRICS_KEYS = ["listen"] as const;
export const LISTEN_KEYS = ["address", "tls"] as const;
/** ODMR listeners may also choose one line per TLS record (fetchmail, docs/architecture.md "Decisions and why"). */
export const ODMR_LISTEN_KEYS = ["address", "tls", "line_records"] as const;

/** Narrows `unknown` YAML values, failing with the file and key path. */
export class Validator {
  readonly #file: string | undefined;
  readonly #baseDir: string;

  constructor(file: string | undefined, baseDir: string) {
    this.#file = file;
    this.#baseDir = baseDir;
  }

  fail(key: string, detail: string): never {
    throw new ConfigError(this.#file, key === "" ? undefined : key, detail);
  }

  /** A mapping whose keys are all in `known`; unknown keys are errors with a suggestion. */
  mapping<K extends string>(
    value: unknown,
    key: string,
    known: readonly K[],
  ): Partial<Record<K, unknown>> {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      if (key === "") this.fail("", `must be a YAML mapping at the top level: ${describe(value)}`);
      this.fail(key, `must be a mapping: current value is ${describe(value)}`);
    }
    for (const k of Object.keys(value)) {
      if ((known as readonly string[]).includes(k)) continue;
      const full = key === "" ? k : `${key}.${k}`;
      const hint = didYouMean(k, known);
      const detail = hint === undefined
        ? `is not a known key (known here: ${known.join(", ")})`
        : `is not a known key: did you mean "${key === "" ? hint : `${key}.${hint}`}"?`;
      this.fail(full, detail);
    }
    return value as Partial<Record<K, unknown>>;
  }

  string(value: unknown, key: string): string {
    if (typeof value !== "string" || value.trim() === "") {
      this.fail(key, `must be a non-empty string: current value is ${describe(value)}`);
    }
    return value;
  }

  path(value: unknown, key: string): string {
    return this.resolvePath(this.string(value, key));
  }

  /** A path as written in the config, resolved against the config file's directory. */
  resolvePath(p: string): string {
    return path.resolve(this.#baseDir, p);
  }

  /**
   * `queue.postgres`: a postgres:// URL without a password, the file that holds it, and the
   * size of serve's main pool.
   */
  postgresSection(value: unknown): PostgresConfig {
    const m = this.mapping(value, "queue.postgres", POSTGRES_KEYS);
    const url = this.string(m.url, "queue.postgres.url");
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      // Not echoed: the value may hold a password.
      this.fail("queue.postgres.url", "must be a URL like postgres://USER@HOST:PORT/DB");
    }
    if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
      // Not echoed: the value may hold a password.
      this.fail("queue.postgres.url", "must be a URL like postgres://USER@HOST:PORT/DB");
    }
    if (parsed.password !== "") {
      // The config is often world-readable and gets pasted into bug reports.
      this.fail(
        "queue.postgres.url",
        "must not hold a password: put it in queue.postgres.password_file",
      );
    }
    const passwordFile = m.password_file === undefined || m.password_file === null
      ? undefined
      : this.path(m.password_file, "queue.postgres.password_file");
    const poolSize = m.pool_size === undefined || m.pool_size === null
      ? D.DEFAULT_PG_POOL_SIZE
      : this.integer(m.pool_size, "queue.postgres.pool_size", 1, D.MAX_PG_POOL_SIZE);
    return { url, passwordFile, poolSize };
  }

  hostname(value: unknown, key: string): string {
    const s = this.string(value, key);
    if (
      !/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(s)
    ) {
      this.fail(key, `must be a host name: current value is ${describe(value)}`);
    }
    return s;
  }

  boolean(value: unknown, key: string): boolean {
    if (typeof value !== "boolean") {
      this.fail(key, `must be true or false: current value is ${describe(value)}`);
    }
    return value;
  }

  integer(value: unknown, key: string, min: number, max: number): number {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      this.fail(key, `must be an integer ${min}-${max}: current value is ${describe(value)}`);
    }
    return value;
  }

  /**
   * `smtp.max_line_length`: 78-998. Over 998 is refused with the reason: the drain relays with
   * DATA, where a line is at most 998 octets and CRLF (RFC 5321 §4.5.3.1.6), so a longer line
   * accepted with 250 would be refused downstream after we took responsibility for it.
   */
  maxLineLength(value: unknown): number {
    const key = "smtp.max_line_length";
    const max = D.DEFAULT_SMTP_MAX_LINE_LENGTH;
    if (typeof value === "number" && Number.isInteger(value) && value > max) {
      this.fail(
        key,
        `must be at most ${max} (octets without CRLF): longer lines cannot be relayed with ` +
          `SMTP DATA, so mail accepted with them would be refused after the MX said 250: ` +
          `current value is ${value}`,
      );
    }
    return this.integer(value, key, D.MIN_SMTP_MAX_LINE_LENGTH, max);
  }

  oneOf<T extends string>(value: unknown, key: string, allowed: readonly T[]): T {
    if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
      this.fail(key, `must be one of ${allowed.join(", ")}: current value is ${describe(value)}`);
    }
    return value as T;
  }

  duration(value: unknown, key: string): number {
    const ms = parseDurationMs(value);
    if (ms === undefined || ms <= 0) {
      this.fail(
        key,
        `must be a duration such as 30s, 5m, 2h or 30d: current value is ${describe(value)}`,
      );
    }
    return ms;
  }

  /**
   * A duration that becomes a timer (an idle deadline, a poll interval): at least `minMs`, at
   * most 24d. A timer
   * cannot wait longer than 2^31-1 ms (about 24.8 days); Deno fires a longer one after 1 ms,
   * which turned a deadline into a loop re-arming every millisecond.
   */
  timerDuration(value: unknown, key: string, minMs: number): number {
    const ms = this.duration(value, key);
    if (ms < minMs) {
      this.fail(
        key,
        `must be at least ${formatDuration(minMs)}: current value is ${describe(value)}`,
      );
    }
    if (ms > D.MAX_TIMER_MS) {
      this.fail(
        key,
        `must be at most ${formatDuration(D.MAX_TIMER_MS)} (longer than a timer can wait): ` +
          `current value is ${describe(value)}`,
      );
    }
    return ms;
  }

  /** An age maintenance expires or reports at (`max_age`, `delay_notice`): `minMs` to 3650d. */
  age(value: unknown, key: string, minMs: number): number {
    const ms = this.duration(value, key);
    if (ms < minMs) {
      this.fail(
        key,
        `must be at least ${formatDuration(minMs)}: current value is ${describe(value)}`,
      );
    }
    if (ms > D.MAX_AGE_MS) {
      this.fail(
        key,
        `must be at most ${formatDuration(D.MAX_AGE_MS)}: current value is ${describe(value)}`,
      );
    }
    return ms;
  }

  size(value: unknown, key: string): number {
    const bytes = parseSizeBytes(value);
    if (bytes === undefined || bytes <= 0) {
      this.fail(
        key,
        `must be a size in bytes or such as 512KB or 50MB: current value is ${describe(value)}`,
      );
    }
    return bytes;
  }

  hostPort(value: unknown, key: string, defaultPort?: number): { host: string; port: number } {
    const parsed = typeof value === "string" ? splitHostPort(value, defaultPort) : undefined;
    if (parsed === undefined) {
      this.fail(key, `must be "HOST:PORT": current value is ${describe(value)}`);
    }
    return parsed;
  }

  listenList(
    value: unknown,
    key: string,
    tls: Config["tls"],
    isOdmr: boolean,
  ): ListenEntry[] {
    if (!Array.isArray(value)) {
      this.fail(key, `must be a list of "HOST:PORT" entries: current value is ${describe(value)}`);
    }
    return value.map((entry: unknown, i) => this.listenEntry(entry, `${key}[${i}]`, tls, isOdmr));
  }

  listenEntry(value: unknown, key: string, tls: Config["tls"], isOdmr: boolean): ListenEntry {
    if (typeof value === "string") return { ...this.hostPort(value, key), tls: "none" };
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.fail(
        key,
        `must be "HOST:PORT" or {address: "HOST:PORT", tls: implicit}: current value is ${
          describe(value)
        }`,
      );
    }
    const m = this.mapping(value, key, isOdmr ? ODMR_LISTEN_KEYS : LISTEN_KEYS);
    if (m.address === undefined) this.fail(`${key}.address`, "is required");
    const where = this.hostPort(m.address, `${key}.address`);
    const mode = this.oneOf<"none" | "implicit">(m.tls ?? "none", `${key}.tls`, [
      "none",
      "implicit",
    ]);
    if (mode === "implicit" && tls === undefined) {
      this.fail(`${key}.tls`, "is implicit, which needs tls.cert and tls.key to be set");
    }
    // `auto` is what absence means (decided per session); check-config prints it that way.
    const raw = "line_records" in m ? m.line_records : undefined;
    const lineRecords = raw === undefined || raw === null || raw === "auto"
      ? undefined
      : typeof raw === "boolean"
      ? raw
      : this.fail(
        `${key}.line_records`,
        `must be true, false or auto: current value is ${describe(raw)}`,
      );
    return lineRecords === undefined
      ? { ...where, tls: mode }
      : { ...where, tls: mode, lineRecords };
  }

  tlsSection(value: unknown): { cert: string; key: string } {
    const m = this.mapping(value, "tls", TLS_KEYS);
    if (m.cert === undefined) this.fail("tls.cert", "is required when tls is set");
    if (m.key === undefined) this.fail("tls.key", "is required when tls is set");
    return { cert: this.path(m.cert, "tls.cert"), key: this.path(m.key, "tls.key") };
  }

  metricsSection(value: unknown): { listen: { host: string; port: number } } {
    const m = this.mapping(value, "metrics", METRICS_KEYS);
    if (m.listen === undefined) this.fail("metrics.listen", "is required when metrics is set");
    return { listen: this.hostPort(m.listen, "metrics.listen") };
  }

  /** `{bytes, messages}`: each optional, at least one given. */
  quota(value: unknown, key: string): QuotaLimits {
    const m = this.mapping(value, key, QUOTA_KEYS);
    if (m.bytes === undefined && m.messages === undefined) {
      this.fail(key, "must set bytes, messages or both");
    }
    return {
      bytes: m.bytes === undefined ? undefined : this.size(m.bytes, `${key}.bytes`),
      messages: m.messages === undefined
        ? undefined
        : this.integer(m.messages, `${key}.messages`, 1, Number.MAX_SAFE_INTEGER),
    };
  }

  /** `domains: {example.org: {max_age, quota}}`: per-domain overrides of the queue defaults. */
  domainsSection(value: unknown, defaults: DomainPolicy): Map<string, DomainPolicy> {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.fail(
        "domains",
        `must be a mapping of domain names: current value is ${describe(value)}`,
      );
    }
    const out = new Map<string, DomainPolicy>();
    for (const [name, entry] of Object.entries(value)) {
      const key = `domains.${name}`;
      const domain = this.domain(name, key);
      if (out.has(domain)) this.fail(key, `names the same domain as another entry: "${domain}"`);
      const m = this.mapping(entry ?? {}, key, DOMAIN_KEYS);
      out.set(domain, {
        maxAgeMs: m.max_age === undefined
          ? defaults.maxAgeMs
          : this.age(m.max_age, `${key}.max_age`, D.MIN_MAX_AGE_MS),
        quota: m.quota === undefined ? defaults.quota : this.quota(m.quota, `${key}.quota`),
      });
    }
    return out;
  }

  /** Lower-case A-label (IDNs are compared as A-labels, README.md). */
  domain(value: unknown, key: string): string {
    const s = this.string(value, key).trim().replace(/\.$/, "");
    const ascii = domainToAscii(s.toLowerCase());
    if (ascii === "" || !/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(ascii)) {
      this.fail(key, `must be a domain name: current value is ${describe(value)}`);
    }
    return ascii;
  }
}

/** `HOST:PORT` or `[v6]:PORT` (or `HOST` alone when a default port is given). */
export function splitHostPort(
  value: string,
  defaultPort?: number,
): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]\s]*))(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return undefined;
  if (m[3] === undefined && defaultPort === undefined) return undefined;
  const port = m[3] === undefined ? defaultPort as number : Number(m[3]);
  if (port > 65535) return undefined;
  const host = m[1] ?? m[2] ?? "";
  return host === "" ? undefined : { host, port };
}

/** A value as shown in an error: strings quoted, the rest as YAML would spell them. */
export function describe(value: unknown): string {
  if (value === undefined || value === null) return "empty";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return "a list";
  return "a mapping";
}
