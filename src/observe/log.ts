/**
 * Structured logging: one line per event, `text` (key=value) or `json`, to stderr.
 * Callers pass fields; nothing here knows SMTP. Never give it passwords, AUTH payloads or
 * bodies (STYLE.md §5): redaction is the caller's job, and `redact()` marks it.
 */
import type { LogFormat, LogLevel } from "../config/types.ts";

export type LogFields = Record<string, string | number | boolean | undefined>;

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Writes one event. */
export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every event (e.g. the session id). */
  with(fields: LogFields): Logger;
}

/** The placeholder for secrets in logs. */
export const REDACTED = "<redacted>";

/** Creates a logger writing to `sink` (stderr by default). */
export function createLogger(opts: {
  level: LogLevel;
  format: LogFormat;
  sink?: (line: string) => void;
  now?: () => Date;
}): Logger {
  const min = LEVELS[opts.level];
  const encoder = new TextEncoder();
  const sink = opts.sink ?? ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const now = opts.now ?? (() => new Date());
  const make = (base: LogFields): Logger => {
    const emit = (level: LogLevel, event: string, fields: LogFields = {}) => {
      if (LEVELS[level] < min) return;
      const all: LogFields = { ...base, ...fields };
      sink(formatEvent(opts.format, now(), level, event, all));
    };
    return {
      debug: (e, f) => emit("debug", e, f),
      info: (e, f) => emit("info", e, f),
      warn: (e, f) => emit("warn", e, f),
      error: (e, f) => emit("error", e, f),
      with: (fields) => make({ ...base, ...fields }),
    };
  };
  return make({});
}

/** A logger that drops everything (tests, library use). */
export const NULL_LOGGER: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  with() {
    return NULL_LOGGER;
  },
};

function formatEvent(
  format: LogFormat,
  time: Date,
  level: LogLevel,
  event: string,
  fields: LogFields,
): string {
  if (format === "json") {
    const obj: Record<string, unknown> = { time: time.toISOString(), level, event };
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) obj[k] = v;
    return JSON.stringify(obj);
  }
  let line = `${time.toISOString()} ${level} event=${event}`;
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    line += ` ${k}=${quoteValue(String(v))}`;
  }
  return line;
}

/** Quotes values with spaces, quotes or control characters so one event stays one line. */
function quoteValue(v: string): string {
  // deno-lint-ignore no-control-regex -- control characters are exactly what must be quoted
  if (v !== "" && /^[^\s"=\\\x00-\x1f\x7f]+$/.test(v)) return v;
  return JSON.stringify(v);
}
