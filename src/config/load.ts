/**
 * Finds, reads and validates the config file into a `Config` (README.md "Configuration").
 * Every error is a ConfigError naming the file and the key path; unknown keys are errors.
 * Relative paths in a file are resolved against the file's directory (the working directory
 * for the embedded defaults), so the result never depends on where `serve` was started.
 */
import { MAX_NAMED_FILE_TEXT, namedFileFault } from "../named_file.ts";
import * as path from "../posix_path.ts";
import type { Config, LogFormat, LogLevel } from "./types.ts";
import * as D from "./defaults.ts";
import {
  ConfigError,
  LOG_KEYS,
  ODMR_KEYS,
  QUEUE_KEYS,
  SMTP_KEYS,
  TOP_KEYS,
  Validator,
} from "./_validator.ts";
import { parseOutbound, parseSubmission } from "./_outbound.ts";
import { parseFetch } from "./_fetch.ts";
import { errorText } from "../errors.ts";
import { parseSimpleYaml } from "./_yaml_lite.ts";

export { ConfigError };

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

/** The largest config file read (config.example.yaml, every key commented, is ~10 KB). */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

/**
 * The text of the config file, which must be a regular file of at most MAX_CONFIG_FILE_BYTES: a
 * FIFO would wait for a writer for ever, a device such as /dev/zero fill memory without end.
 */
async function readConfigText(file: string): Promise<string> {
  const fail = (detail: string): never => {
    throw new ConfigError(file, undefined, detail);
  };
  let handle: Deno.FsFile | undefined;
  try {
    const info = await Deno.stat(file); // before the open, which blocks on a FIFO
    if (!info.isFile) fail("is not a regular file");
    if (info.size > MAX_CONFIG_FILE_BYTES) fail("is larger than 1 MiB");
    handle = await Deno.open(file);
    // Its size as stat said, and more if it grew since, up to one octet past the bound.
    const decoder = new TextDecoder();
    let text = "";
    let length = 0;
    for (let room = info.size + 1;; room = 64 * 1024) {
      const chunk = new Uint8Array(room);
      const n = await handle.read(chunk);
      if (n === null) return text + decoder.decode();
      length += n;
      if (length > MAX_CONFIG_FILE_BYTES) fail("is larger than 1 MiB");
      text += decoder.decode(chunk.subarray(0, n), { stream: true });
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    return fail(
      err instanceof Deno.errors.NotFound ? "file not found" : `cannot be read: ${errorText(err)}`,
    );
  } finally {
    handle?.close();
  }
}

/** Finds and loads the config: `--config`, `ODMR_RELAY_CONFIG`, `./config.yaml`, defaults. */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<Config> {
  const cwd = opts.cwd ?? Deno.cwd();
  const file = await findConfigFile({ ...opts, cwd });
  const text = file === undefined ? "" : await readConfigText(file);
  // The plain shape is read without the yaml package; anything else loads it (_yaml_lite.ts).
  const lite = parseSimpleYaml(text);
  const root = lite !== undefined
    ? lite.value
    : (await import("./_yaml_full.ts")).parseYamlText(text, file);
  const config = configFromValue(root, {
    source: file,
    baseDir: file === undefined ? cwd : path.dirname(file),
    systemHostname: opts.systemHostname ?? (() => Deno.hostname()),
  });
  if (opts.checkFiles ?? true) await checkReferencedFiles(config);
  return config;
}

/**
 * Validates a parsed config file (`parseConfig` in parse.ts reads the text) into a Config.
 * Pure apart from `systemHostname`.
 */
export function configFromValue(
  value: unknown,
  opts: { source: string | undefined; baseDir: string; systemHostname: () => string },
): Config {
  const v = new Validator(opts.source, opts.baseDir);
  const root: unknown = value ?? {};
  const top = v.mapping(root, "", TOP_KEYS);

  const tlsRaw = top.tls;
  const tls = tlsRaw === undefined || tlsRaw === null ? undefined : v.tlsSection(tlsRaw);

  const smtp = v.mapping(top.smtp ?? {}, "smtp", SMTP_KEYS);
  const odmr = v.mapping(top.odmr ?? {}, "odmr", ODMR_KEYS);
  const queue = v.mapping(top.queue ?? {}, "queue", QUEUE_KEYS);
  const log = v.mapping(top.log ?? {}, "log", LOG_KEYS);

  const maxAgeMs = v.age(
    queue.max_age ?? D.DEFAULT_QUEUE_MAX_AGE,
    "queue.max_age",
    D.MIN_MAX_AGE_MS,
  );
  const quota = queue.quota === undefined || queue.quota === null
    ? undefined
    : v.quota(queue.quota, "queue.quota");

  const leaseMs = v.duration(queue.lease_time ?? D.DEFAULT_QUEUE_LEASE_TIME, "queue.lease_time");
  if (leaseMs < 3000 || leaseMs > 3_600_000) {
    v.fail("queue.lease_time", "must be between 3s and 1h");
  }
  // 0 turns the reserve off.
  const reserve = queue.space_reserve ?? D.DEFAULT_QUEUE_SPACE_RESERVE;
  const spaceReserveBytes = reserve === 0 || reserve === "0"
    ? 0
    : v.size(reserve, "queue.space_reserve");
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

  const odmrListen = v.listenList(odmr.listen ?? D.DEFAULT_ODMR_LISTEN, "odmr.listen", tls, true);
  const requireTls = v.boolean(
    odmr.require_tls ?? D.DEFAULT_ODMR_REQUIRE_TLS,
    "odmr.require_tls",
  );
  if (requireTls && tls === undefined && odmrListen.length > 0) {
    // No STARTTLS to offer: every AUTH would get 530 and no customer could collect.
    v.fail(
      "odmr.require_tls",
      "is true, which needs tls.cert and tls.key to be set (AUTH is offered only after " +
        "STARTTLS or on implicit TLS)",
    );
  }

  const hostname = top.hostname === undefined
    ? opts.systemHostname()
    : v.hostname(top.hostname, "hostname");

  const config: Config = {
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
      timeoutMs: v.timerDuration(
        smtp.timeout ?? D.DEFAULT_SMTP_TIMEOUT,
        "smtp.timeout",
        D.MIN_SESSION_TIMER_MS,
      ),
      maxLineLength: v.maxLineLength(smtp.max_line_length ?? D.DEFAULT_SMTP_MAX_LINE_LENGTH),
    },
    odmr: {
      listen: odmrListen,
      requireTls,
      authTimeoutMs: v.timerDuration(
        odmr.auth_timeout ?? D.DEFAULT_ODMR_AUTH_TIMEOUT,
        "odmr.auth_timeout",
        D.MIN_SESSION_TIMER_MS,
      ),
      drainTimeoutMs: v.timerDuration(
        odmr.drain_timeout ?? D.DEFAULT_ODMR_DRAIN_TIMEOUT,
        "odmr.drain_timeout",
        D.MIN_SESSION_TIMER_MS,
      ),
    },
    queue: { maxAgeMs, quota, backend, postgres, leaseMs, spaceReserveBytes },
    domains: top.domains === undefined || top.domains === null
      ? new Map()
      : v.domainsSection(top.domains, { maxAgeMs, quota }),
    metrics: top.metrics === undefined || top.metrics === null
      ? undefined
      : v.metricsSection(top.metrics),
    fetch: top.fetch === undefined || top.fetch === null ? undefined : parseFetch(v, top.fetch),
    submission: parseSubmission(v, top.submission, tls),
    outbound: parseOutbound(v, top.outbound, hostname),
  };
  const clash = findListenClash(config);
  if (clash !== undefined) {
    v.fail(
      clash.key,
      `is "${clash.address}", which ${clash.earlier} takes already: each address and port can ` +
        "be listened on once",
    );
  }
  return config;
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
      if (namedFileFault(info) !== undefined) {
        // Read whole where it is used (src/named_file.ts): refused here, before the start.
        throw new ConfigError(
          config.source,
          key,
          `names a file larger than ${MAX_NAMED_FILE_TEXT}: "${file}"`,
        );
      }
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      const detail = err instanceof Deno.errors.NotFound
        ? `names a file that does not exist: "${file}"`
        : `names a file that cannot be read: "${file}": ${errorText(err)}`;
      throw new ConfigError(config.source, key, detail);
    }
  }
}

// Two listeners of one config on the same address and port: the second can never be bound
// ("Address already in use"), so the config is refused when it loads, naming both key paths.
// A wildcard (`0.0.0.0`, `[::]`) takes its family's every address on that port. Port 0 (any
// free port) never clashes, nor do two families: whether `[::]` also takes IPv4 depends on the
// system (net.ipv6.bindv6only; README "Deploying"). Here, not in a module of its own: every
// command loads this file at start (serve's idle memory, #13).

/** One listener: its key path and where it listens. */
interface Place {
  readonly key: string;
  readonly host: string;
  readonly port: number;
}

/** The later of the first two listeners that clash: its key, its address and the earlier key. */
interface ListenClash {
  readonly key: string;
  readonly address: string;
  readonly earlier: string;
}

/** The first clash among smtp, odmr, submission and metrics listeners, or undefined. */
function findListenClash(config: Config): ListenClash | undefined {
  const places: Place[] = [
    ...config.smtp.listen.map((e, i) => ({ key: `smtp.listen[${i}]`, host: e.host, port: e.port })),
    ...config.odmr.listen.map((e, i) => ({ key: `odmr.listen[${i}]`, host: e.host, port: e.port })),
    ...(config.submission?.listen ?? []).map((e, i) => ({
      key: `submission.listen[${i}]`,
      host: e.host,
      port: e.port,
    })),
    ...(config.metrics === undefined ? [] : [{ key: "metrics.listen", ...config.metrics.listen }]),
  ];
  for (let later = 1; later < places.length; later++) {
    const b = places[later] as Place;
    const a = places.slice(0, later).find((p) => isClash(p, b));
    if (a === undefined) continue;
    const host = b.host.includes(":") ? `[${b.host}]` : b.host;
    return { key: b.key, address: `${host}:${b.port}`, earlier: a.key };
  }
  return undefined;
}

function isClash(a: Place, b: Place): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  const x = a.host.toLowerCase();
  const y = b.host.toLowerCase();
  if (x === y) return true;
  const family = (h: string) => h.includes(":") ? 6 : /^\d+\.\d+\.\d+\.\d+$/.test(h) ? 4 : 0;
  if (family(x) === 0 || family(x) !== family(y)) return false;
  const any = family(x) === 6 ? "::" : "0.0.0.0";
  return x === any || y === any;
}
