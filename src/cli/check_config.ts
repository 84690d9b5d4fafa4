/**
 * `check-config`: loads and validates the config, prints every effective setting as YAML in
 * the file's own key names, defaults included (so the output is itself a valid config that
 * means the same): `null` for a section that is off, `auto` for `line_records` decided per
 * session. The config holds no secret: `fetch.password_file` is a path, never read here.
 */
import YAML from "yaml";
import type { Config, ListenEntry, QuotaLimits } from "../config/types.ts";
import { formatDuration, formatSize } from "../config/_units.ts";
import { CertificateError, certificateWarnings, loadCertificatePair } from "../net/tls_context.ts";
import { serveConfigProblem } from "../config/serve_checks.ts";
import { movedQueueRefusal } from "./_check_moved.ts";
import { errorText } from "../errors.ts";

/**
 * Prints the effective config, after checking that `tls.cert` and `tls.key` parse and belong
 * together (exit 2 naming the file); warnings (expiry within 14 days, a certificate that does
 * not name `hostname`) go to stderr and do not change the exit code.
 */
export function checkConfigCommand(
  config: Config,
  stdout: (text: string) => void,
  stderr: (text: string) => void = () => {},
): number {
  if (config.tls !== undefined) {
    try {
      const pair = loadCertificatePair(config.tls.cert, config.tls.key);
      const warnings = certificateWarnings(pair, {
        hostname: config.hostname,
        certFile: config.tls.cert,
      });
      for (const w of warnings) stderr(`warning: ${w}\n`);
    } catch (err) {
      if (!(err instanceof CertificateError)) throw err;
      stderr(`error: Cannot load config "${config.source}": ${err.message}\n`);
      return 2;
    }
  }
  const moved = movedQueueCheck(config);
  if (moved.refusal !== undefined) {
    stderr(`error: ${moved.refusal}\n`);
    return 2;
  }
  if (moved.warning !== undefined) stderr(`warning: ${moved.warning}\n`);
  const serveProblem = serveConfigProblem(config);
  if (serveProblem !== undefined) {
    stderr(`warning: ${serveProblem}; serve refuses this config (fetch can use it)\n`);
  }
  stdout(renderEffectiveConfig(config));
  return 0;
}

/**
 * serve's refusal of a SQLite queue `queue migrate` marked (exit 2 for both), or a warning when
 * the queue cannot be read to tell (serve will say why it cannot open it).
 */
function movedQueueCheck(config: Config): { refusal?: string; warning?: string } {
  try {
    const refusal = movedQueueRefusal(config);
    return refusal === undefined ? {} : { refusal };
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) throw err;
    return {
      warning: `cannot read the queue in data_dir "${config.dataDir}" to check for queue ` +
        `migrate's mark: ${errorText(err)}`,
    };
  }
}

/** The effective settings as a YAML document with a header naming the source. */
export function renderEffectiveConfig(config: Config): string {
  const header = [
    `# odmr-relay effective configuration`,
    `# source: ${config.source ?? "embedded defaults (no config file)"}`,
    `# secrets: none in the config; fetch.password_file and fetch.client_key are paths and their content is not shown`,
    `# every setting is shown, defaults included; null: off or no limit`,
  ];
  return header.join("\n") + "\n" + YAML.stringify(toFileShape(config), { lineWidth: 0 });
}

function toFileShape(config: Config): Record<string, unknown> {
  const shape: Record<string, unknown> = {
    hostname: config.hostname,
    "data_dir": config.dataDir,
    log: { level: config.log.level, format: config.log.format },
    tls: config.tls === undefined ? null : { cert: config.tls.cert, key: config.tls.key },
    smtp: {
      listen: config.smtp.listen.map((e) => listenEntry(e, false)),
      "max_message_size": sizeValue(config.smtp.maxMessageSize),
      "max_recipients": config.smtp.maxRecipients,
      "max_connections": config.smtp.maxConnections,
      "max_connections_per_ip": config.smtp.maxConnectionsPerIp,
      timeout: formatDuration(config.smtp.timeoutMs),
      "max_line_length": config.smtp.maxLineLength,
    },
    odmr: {
      listen: config.odmr.listen.map((e) => listenEntry(e, true)),
      "require_tls": config.odmr.requireTls,
      "auth_timeout": formatDuration(config.odmr.authTimeoutMs),
      "drain_timeout": formatDuration(config.odmr.drainTimeoutMs),
    },
    queue: {
      "max_age": formatDuration(config.queue.maxAgeMs),
      quota: config.queue.quota === undefined ? null : quotaShape(config.queue.quota),
      "lease_time": formatDuration(config.queue.leaseMs),
      "space_reserve": sizeValue(config.queue.spaceReserveBytes),
      backend: config.queue.backend,
      postgres: config.queue.postgres === undefined ? null : {
        url: config.queue.postgres.url,
        "password_file": config.queue.postgres.passwordFile ?? null,
        "pool_size": config.queue.postgres.poolSize,
      },
    },
    domains: Object.fromEntries(
      [...config.domains].map(([domain, p]) => [domain, {
        "max_age": formatDuration(p.maxAgeMs),
        ...(p.quota === undefined ? {} : { quota: quotaShape(p.quota) }),
      }]),
    ),
    metrics: config.metrics === undefined
      ? null
      : { listen: hostPort(config.metrics.listen.host, config.metrics.listen.port) },
  };
  const sub = config.submission;
  shape.submission = sub === undefined ? null : {
    listen: sub.listen.map((e) => listenEntry(e, false)),
    "max_recipients": sub.maxRecipients,
    "max_messages_per_hour": sub.maxMessagesPerHour,
    "max_recipients_per_hour": sub.maxRecipientsPerHour,
    "auth_timeout": formatDuration(sub.authTimeoutMs),
  };
  const out = config.outbound;
  shape.outbound = {
    resolver: out.resolver === undefined ? null : hostPort(out.resolver.host, out.resolver.port),
    helo: out.helo,
    tls: out.tls,
    "max_age": formatDuration(out.maxAgeMs),
    "delay_notice": formatDuration(out.delayNoticeMs),
    retry: out.retryScheduleMs.map(formatDuration),
    concurrency: out.concurrency,
    "allow_private_mx": out.allowPrivateMx,
    "own_addresses": [...out.ownAddresses],
  };
  const f = config.fetch;
  shape.fetch = f === undefined ? null : {
    server: hostPort(f.server.host, f.server.port),
    tls: f.tls,
    ca: f.ca ?? null,
    "ca_only": f.caOnly === true,
    "tls_server_name": f.tlsServerName ?? null,
    user: f.user,
    "password_file": f.passwordFile ?? null,
    "client_cert": f.clientCert ?? null,
    "client_key": f.clientKey ?? null,
    domains: [...f.domains],
    "deliver_to": deliverTo(f.deliverTo),
    interval: formatDuration(f.intervalMs),
  };
  return shape;
}

/** SMTP entries stay short when plain; ODMR entries always show their line_records. */
function listenEntry(e: ListenEntry, isOdmr: boolean): string | Record<string, unknown> {
  const address = hostPort(e.host, e.port);
  if (!isOdmr && e.tls === "none") return address;
  return {
    address,
    tls: e.tls,
    ...(isOdmr ? { "line_records": e.lineRecords ?? "auto" } : {}),
  };
}

function quotaShape(q: QuotaLimits): Record<string, unknown> {
  return {
    ...(q.bytes === undefined ? {} : { bytes: sizeValue(q.bytes) }),
    ...(q.messages === undefined ? {} : { messages: q.messages }),
  };
}

/** A size as the file would write it: `50MB`, or a plain number of bytes (`0`, not `"0"`). */
function sizeValue(bytes: number): string | number {
  const text = formatSize(bytes);
  return /^\d+$/.test(text) ? bytes : text;
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function deliverTo(d: NonNullable<Config["fetch"]>["deliverTo"]): string {
  switch (d.kind) {
    case "smtp":
    case "lmtp":
      return `${d.kind}://${hostPort(d.host, d.port)}`;
    case "lmtpUnix":
      return `lmtp+unix:${d.path}`;
    case "maildir":
      return `maildir:${d.path}`;
    default: {
      const never: never = d;
      return never;
    }
  }
}
