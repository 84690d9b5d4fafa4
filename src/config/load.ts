/**
 * Finds, reads and validates the config file into a `Config` (README.md "Configuration").
 * Every error is a ConfigError naming the file and the key path; unknown keys are errors.
 * Relative paths in a file are resolved against the file's directory (the working directory
 * for the embedded defaults), so the result never depends on where `serve` was started.
 */
import YAML from "yaml";
import path from "node:path";
import { domainToASCII } from "node:url";
import type {
  Config,
  DeliverTo,
  DomainPolicy,
  FetchConfig,
  ListenEntry,
  LogFormat,
  LogLevel,
  PostgresConfig,
  QuotaLimits,
} from "./types.ts";
import { didYouMean } from "./_did_you_mean.ts";
import { parseDurationMs, parseSizeBytes } from "./_units.ts";
import * as D from "./defaults.ts";
import { parseOutbound, parseSubmission } from "./_outbound.ts";

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

/** Where the config comes from, and how to read it. */
export interface LoadConfigOptions {
  /** `--config F`. */
  readonly path?: string | undefined;
  /** Environment (for `ODMR_RELAY_CONFIG`); default: none. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Working directory; default `Deno.cwd()`. */
  readonly cwd?: string;
  /** The system host name (default `Deno.hostname()`), used when `hostname` is not set. */
  readonly systemHostname?: () => string;
  /** Check that referenced files (cert, key, ca, password_file) exist; default true. */
  readonly checkFiles?: boolean;
}

/** The file the discovery order picks (README.md), or undefined for the embedded defaults. */
export async function findConfigFile(opts: LoadConfigOptions = {}): Promise<string | undefined> {
  const cwd = opts.cwd ?? Deno.cwd();
  if (opts.path !== undefined) return path.resolve(cwd, opts.path);
  const fromEnv = opts.env?.[D.CONFIG_ENV_VAR];
  if (fromEnv !== undefined && fromEnv !== "") return path.resolve(cwd, fromEnv);
  const local = path.resolve(cwd, D.DEFAULT_CONFIG_FILE);
  try {
    await Deno.stat(local);
    return local;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new ConfigError(local, undefined, `cannot be read: ${errorText(err)}`);
  }
}

/** Finds and loads the config: `--config`, `ODMR_RELAY_CONFIG`, `./config.yaml`, defaults. */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<Config> {
  const cwd = opts.cwd ?? Deno.cwd();
  const file = await findConfigFile({ ...opts, cwd });
  let text = "";
  if (file !== undefined) {
    try {
      text = await Deno.readTextFile(file);
    } catch (err) {
      const detail = err instanceof Deno.errors.NotFound
        ? "file not found"
        : `cannot be read: ${errorText(err)}`;
      throw new ConfigError(file, undefined, detail);
    }
  }
  const config = parseConfig(text, {
    source: file,
    baseDir: file === undefined ? cwd : path.dirname(file),
    systemHostname: opts.systemHostname ?? (() => Deno.hostname()),
  });
  if (opts.checkFiles ?? true) await checkReferencedFiles(config);
  return config;
}

/** Validates YAML text into a Config. Pure apart from `systemHostname`. */
export function parseConfig(
  text: string,
  opts: { source: string | undefined; baseDir: string; systemHostname: () => string },
): Config {
  const v = new Validator(opts.source, opts.baseDir);
  const lineCounter = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  const first = doc.errors[0];
  if (first !== undefined) {
    const pos = lineCounter.linePos(first.pos[0]);
    const at = ` at line ${pos.line}, column ${pos.col}`;
    throw new ConfigError(opts.source, undefined, `is not valid YAML${at}: ${firstLine(first)}`);
  }
  const root: unknown = doc.toJS() ?? {};
  const top = v.mapping(root, "", TOP_KEYS);

  const tlsRaw = top.tls;
  const tls = tlsRaw === undefined || tlsRaw === null ? undefined : v.tlsSection(tlsRaw);

  const smtp = v.mapping(top.smtp ?? {}, "smtp", SMTP_KEYS);
  const odmr = v.mapping(top.odmr ?? {}, "odmr", ODMR_KEYS);
  const queue = v.mapping(top.queue ?? {}, "queue", QUEUE_KEYS);
  const log = v.mapping(top.log ?? {}, "log", LOG_KEYS);

  const maxAgeMs = v.duration(queue.max_age ?? D.DEFAULT_QUEUE_MAX_AGE, "queue.max_age");
  const quota = queue.quota === undefined || queue.quota === null
    ? undefined
    : v.quota(queue.quota, "queue.quota");

  const leaseMs = v.duration(queue.lease_time ?? D.DEFAULT_QUEUE_LEASE_TIME, "queue.lease_time");
  if (leaseMs < 3000 || leaseMs > 3_600_000) {
    v.fail("queue.lease_time", "must be between 3s and 1h");
  }
  const backend = v.oneOf<"sqlite" | "postgres">(
    queue.backend ?? "sqlite",
    "queue.backend",
    ["sqlite", "postgres"],
  );
  const postgres = queue.postgres === undefined || queue.postgres === null
    ? undefined
    : v.postgresSection(queue.postgres);
  if (backend === "postgres" && postgres === undefined) {
    v.fail("queue.postgres", "must be set when queue.backend is postgres (url, password_file)");
  }

  const hostname = top.hostname === undefined
    ? opts.systemHostname()
    : v.hostname(top.hostname, "hostname");

  return {
    source: opts.source,
    hostname,
    dataDir: v.path(top.data_dir ?? D.DEFAULT_DATA_DIR, "data_dir"),
    log: {
      level: v.oneOf<LogLevel>(log.level ?? D.DEFAULT_LOG_LEVEL, "log.level", [
        "debug",
        "info",
        "warn",
        "error",
      ]),
      format: v.oneOf<LogFormat>(log.format ?? D.DEFAULT_LOG_FORMAT, "log.format", [
        "text",
        "json",
      ]),
    },
    tls,
    smtp: {
      listen: v.listenList(smtp.listen ?? D.DEFAULT_SMTP_LISTEN, "smtp.listen", tls, false),
      maxMessageSize: v.size(
        smtp.max_message_size ?? D.DEFAULT_MAX_MESSAGE_SIZE,
        "smtp.max_message_size",
      ),
      maxRecipients: v.integer(
        smtp.max_recipients ?? D.DEFAULT_MAX_RECIPIENTS,
        "smtp.max_recipients",
        1,
        100_000,
      ),
      maxConnections: v.integer(
        smtp.max_connections ?? D.DEFAULT_MAX_CONNECTIONS,
        "smtp.max_connections",
        1,
        1_000_000,
      ),
      maxConnectionsPerIp: v.integer(
        smtp.max_connections_per_ip ?? D.DEFAULT_MAX_CONNECTIONS_PER_IP,
        "smtp.max_connections_per_ip",
        1,
        1_000_000,
      ),
      timeoutMs: v.duration(smtp.timeout ?? D.DEFAULT_SMTP_TIMEOUT, "smtp.timeout"),
      maxLineLength: v.maxLineLength(smtp.max_line_length ?? D.DEFAULT_SMTP_MAX_LINE_LENGTH),
    },
    odmr: {
      listen: v.listenList(odmr.listen ?? D.DEFAULT_ODMR_LISTEN, "odmr.listen", tls, true),
      requireTls: v.boolean(odmr.require_tls ?? D.DEFAULT_ODMR_REQUIRE_TLS, "odmr.require_tls"),
      authTimeoutMs: v.duration(
        odmr.auth_timeout ?? D.DEFAULT_ODMR_AUTH_TIMEOUT,
        "odmr.auth_timeout",
      ),
    },
    queue: { maxAgeMs, quota, backend, postgres, leaseMs },
    domains: top.domains === undefined || top.domains === null
      ? new Map()
      : v.domainsSection(top.domains, { maxAgeMs, quota }),
    metrics: top.metrics === undefined || top.metrics === null
      ? undefined
      : v.metricsSection(top.metrics),
    fetch: top.fetch === undefined || top.fetch === null ? undefined : v.fetchSection(top.fetch),
    submission: parseSubmission(v, top.submission, tls),
    outbound: parseOutbound(v, top.outbound, hostname),
  };
}

const TOP_KEYS = [
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
const LOG_KEYS = ["level", "format"] as const;
const TLS_KEYS = ["cert", "key"] as const;
const SMTP_KEYS = [
  "listen",
  "max_message_size",
  "max_recipients",
  "max_connections",
  "max_connections_per_ip",
  "timeout",
  "max_line_length",
] as const;
const ODMR_KEYS = ["listen", "require_tls", "auth_timeout"] as const;
const QUEUE_KEYS = ["max_age", "quota", "backend", "postgres", "lease_time"] as const;
const POSTGRES_KEYS = ["url", "password_file"] as const;
const QUOTA_KEYS = ["bytes", "messages"] as const;
const DOMAIN_KEYS = ["max_age", "quota"] as const;
const METRICS_KEYS = ["listen"] as const;
const FETCH_KEYS = [
  "server",
  "tls",
  "ca",
  "tls_server_name",
  "user",
  "password_file",
  "client_cert",
  "client_key",
  "domains",
  "deliver_to",
  "interval",
] as const;
const LISTEN_KEYS = ["address", "tls"] as const;
/** ODMR listeners may also choose one line per TLS record (fetchmail, docs/architecture.md "Decisions and why"). */
const ODMR_LISTEN_KEYS = ["address", "tls", "line_records"] as const;

/** Narrows `unknown` YAML values, failing with the file and key path. */
class Validator {
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
    return path.resolve(this.#baseDir, this.string(value, key));
  }

  /** `queue.postgres`: a postgres:// URL without a password, and the file that holds it. */
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
    return { url, passwordFile };
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
          : this.duration(m.max_age, `${key}.max_age`),
        quota: m.quota === undefined ? defaults.quota : this.quota(m.quota, `${key}.quota`),
      });
    }
    return out;
  }

  fetchSection(value: unknown): FetchConfig {
    const m = this.mapping(value, "fetch", FETCH_KEYS);
    for (const required of ["server", "user"] as const) {
      if (m[required] === undefined) {
        this.fail(`fetch.${required}`, "is required when fetch is set");
      }
    }
    const isSet = (v: unknown) => v !== undefined && v !== null;
    if (isSet(m.client_cert) !== isSet(m.client_key)) {
      const missing = isSet(m.client_cert) ? "client_key" : "client_cert";
      this.fail(
        `fetch.${missing}`,
        "is required with fetch.client_cert/client_key (both or neither)",
      );
    }
    if (!isSet(m.password_file) && !isSet(m.client_cert)) {
      this.fail(
        "fetch.password_file",
        "is required when fetch is set (or fetch.client_cert and fetch.client_key, for AUTH EXTERNAL)",
      );
    }
    const domains = m.domains ?? [];
    if (!Array.isArray(domains)) {
      this.fail(
        "fetch.domains",
        `must be a list of domains: current value is ${describe(domains)}`,
      );
    }
    return {
      server: this.hostPort(m.server, "fetch.server", D.ODMR_PORT),
      tls: this.oneOf(m.tls ?? D.DEFAULT_FETCH_TLS, "fetch.tls", ["starttls", "implicit", "none"]),
      ca: m.ca === undefined || m.ca === null ? undefined : this.path(m.ca, "fetch.ca"),
      ...(m.tls_server_name === undefined || m.tls_server_name === null
        ? {}
        : { tlsServerName: this.domain(m.tls_server_name, "fetch.tls_server_name") }),
      user: this.string(m.user, "fetch.user"),
      passwordFile: isSet(m.password_file)
        ? this.path(m.password_file, "fetch.password_file")
        : undefined,
      ...(isSet(m.client_cert)
        ? {
          clientCert: this.path(m.client_cert, "fetch.client_cert"),
          clientKey: this.path(m.client_key, "fetch.client_key"),
        }
        : {}),
      domains: domains.map((d: unknown, i) => this.domain(d, `fetch.domains[${i}]`)),
      deliverTo: this.deliverTo(m.deliver_to ?? D.DEFAULT_FETCH_DELIVER_TO, "fetch.deliver_to"),
      intervalMs: this.duration(m.interval ?? D.DEFAULT_FETCH_INTERVAL, "fetch.interval"),
    };
  }

  /** Lower-case A-label (IDNs are compared as A-labels, README.md). */
  domain(value: unknown, key: string): string {
    const s = this.string(value, key).trim().replace(/\.$/, "");
    const ascii = domainToASCII(s.toLowerCase());
    if (ascii === "" || !/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(ascii)) {
      this.fail(key, `must be a domain name: current value is ${describe(value)}`);
    }
    return ascii;
  }

  deliverTo(value: unknown, key: string): DeliverTo {
    const s = this.string(value, key);
    const forms = "smtp://HOST:PORT, lmtp://HOST:PORT, lmtp+unix:/PATH or maildir:/PATH";
    const bad = (): never => this.fail(key, `must be ${forms}: current value is ${describe(s)}`);
    const m = /^(smtp|lmtp|lmtp\+unix|maildir):(.*)$/.exec(s);
    if (!m) return bad();
    const scheme = m[1] as string;
    const rest = m[2] as string;
    if (scheme === "smtp" || scheme === "lmtp") {
      if (!rest.startsWith("//")) return bad();
      const where = splitHostPort(rest.slice(2), scheme === "smtp" ? 25 : 24);
      if (where === undefined) return bad();
      return { kind: scheme, ...where };
    }
    const p = rest.startsWith("//") ? rest.slice(2) : rest;
    if (p === "") return bad();
    const resolved = path.resolve(this.#baseDir, p);
    return scheme === "maildir" ? { kind: "maildir", path: resolved } : {
      kind: "lmtpUnix",
      path: resolved,
    };
  }
}

/** `HOST:PORT` or `[v6]:PORT` (or `HOST` alone when a default port is given). */
function splitHostPort(
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

async function checkReferencedFiles(config: Config): Promise<void> {
  const files: [string, string][] = [];
  if (config.tls) files.push(["tls.cert", config.tls.cert], ["tls.key", config.tls.key]);
  if (config.queue.postgres?.passwordFile !== undefined) {
    files.push(["queue.postgres.password_file", config.queue.postgres.passwordFile]);
  }
  if (config.fetch) {
    const f = config.fetch;
    if (f.passwordFile !== undefined) files.push(["fetch.password_file", f.passwordFile]);
    if (f.clientCert !== undefined) files.push(["fetch.client_cert", f.clientCert]);
    if (f.clientKey !== undefined) files.push(["fetch.client_key", f.clientKey]);
    if (config.fetch.ca !== undefined) files.push(["fetch.ca", config.fetch.ca]);
  }
  for (const [key, file] of files) {
    try {
      const info = await Deno.stat(file);
      if (!info.isFile) throw new ConfigError(config.source, key, `is not a file: "${file}"`);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      const detail = err instanceof Deno.errors.NotFound
        ? `names a file that does not exist: "${file}"`
        : `names a file that cannot be read: "${file}": ${errorText(err)}`;
      throw new ConfigError(config.source, key, detail);
    }
  }
}

/** A value as shown in an error: strings quoted, the rest as YAML would spell them. */
function describe(value: unknown): string {
  if (value === undefined || value === null) return "empty";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return "a list";
  return "a mapping";
}

function firstLine(err: Error): string {
  return (err.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
