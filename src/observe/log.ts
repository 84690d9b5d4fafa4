/**
 * Structured logging: one line per event, `text` (key=value) or `json`, to stderr.
 * Callers pass fields; nothing here knows SMTP. Never give it passwords, AUTH payloads or
 * bodies (docs/architecture.md "Conventions"): redaction is the caller's job, and `redact()` marks it.
 * Invariant (text): every `=` in a line separates a key from its value, and a line is one
 * line, whatever a peer put in a value (log injection: a forged `remote=` must not exist).
 */
import type { LogFormat, LogLevel } from "../config/types.ts";
import { writeLogLine } from "./_stderr_lines.ts";

export { flushLogLines, writeStderr } from "./_stderr_lines.ts";

/** Field values; a list is written as one `key=value` per element in text, an array in JSON. */
export type LogFields = Record<string, string | number | boolean | readonly string[] | undefined>;

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** syslog priorities (RFC 5424 §6.2.1) for the `<N>` prefix journald reads. */
const SYSLOG_PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

/** Keys every line starts with; a field of the same name is written as `field_<key>`. */
const RESERVED_KEYS = new Set(["time", "level", "event"]);

/** Writes one event. */
export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /**
   * Writes the event at level info whatever level is set (`-q`, `log.level: warn`): for the few
   * events scripts rely on, serve's `listening` (README.md "Logs"). Absent: as `info`.
   */
  notice?(event: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every event (e.g. the session id). */
  with(fields: LogFields): Logger;
  /**
   * Whether events at `level` are written: a caller skips building costly fields for an event
   * nobody reads (a hot path's debug lines). Absent: assume they are.
   */
  isEnabled?(level: LogLevel): boolean;
}

/** The placeholder for secrets in logs. */
export const REDACTED = "<redacted>";

/**
 * Creates a logger writing to `sink`; by default to stderr, info and debug lines within a few
 * milliseconds, several in one write (src/observe/_stderr_lines.ts).
 */
export function createLogger(opts: {
  level: LogLevel;
  format: LogFormat;
  sink?: (line: string) => void;
  now?: () => Date;
  /** Prefix each line with its syslog priority `<N>` (stderr read by journald). */
  syslogPrefix?: boolean;
}): Logger {
  const core: LoggerCore = {
    min: LEVELS[opts.level],
    format: opts.format,
    sink: opts.sink,
    now: opts.now ?? (() => new Date()),
    syslogPrefix: opts.syslogPrefix === true,
  };
  return new BoundLogger(core, {});
}

/** What every logger made by one createLogger shares. */
interface LoggerCore {
  readonly min: number;
  readonly format: LogFormat;
  readonly sink: ((line: string) => void) | undefined;
  readonly now: () => Date;
  readonly syslogPrefix: boolean;
}

/**
 * A logger and the fields it adds. Methods on a class, not closures made by each `with`: an MX
 * makes three loggers per message (connection, session, transaction), and each `with` cost
 * seven closures and an object for the GC (#13).
 */
class BoundLogger implements Logger {
  readonly #core: LoggerCore;
  readonly #base: LogFields;

  constructor(core: LoggerCore, base: LogFields) {
    this.#core = core;
    this.#base = base;
  }

  debug(event: string, fields?: LogFields): void {
    this.#emit("debug", event, fields);
  }

  info(event: string, fields?: LogFields): void {
    this.#emit("info", event, fields);
  }

  warn(event: string, fields?: LogFields): void {
    this.#emit("warn", event, fields);
  }

  error(event: string, fields?: LogFields): void {
    this.#emit("error", event, fields);
  }

  notice(event: string, fields?: LogFields): void {
    this.#emit("info", event, fields, true);
  }

  with(fields: LogFields): Logger {
    return new BoundLogger(this.#core, { ...this.#base, ...fields });
  }

  isEnabled(level: LogLevel): boolean {
    return LEVELS[level] >= this.#core.min;
  }

  #emit(level: LogLevel, event: string, fields: LogFields | undefined, always = false): void {
    const core = this.#core;
    if (LEVELS[level] < core.min && !always) return;
    const base = this.#base;
    // Text: the logger's fields and the event's are written without merging them into a new
    // object first (a session's every line did; a field of the event wins, in its place).
    const line = core.format === "text"
      ? formatText(core.now(), level, event, base, fields)
      : formatEvent(
        core.format,
        core.now(),
        level,
        event,
        fields === undefined ? base : { ...base, ...fields },
      );
    const out = core.syslogPrefix ? `<${SYSLOG_PRIORITY[level]}>${line}` : line;
    if (core.sink !== undefined) core.sink(out);
    else writeLogLine(out, LEVELS[level] >= LEVELS.warn);
  }
}

/**
 * The logger of a long-running command (serve, fetch): stderr, with the syslog priority
 * prefix when journald reads it (systemd sets JOURNAL_STREAM), so `journalctl -p warning`
 * shows warnings and errors only.
 */
export function createProcessLogger(opts: { level: LogLevel; format: LogFormat }): Logger {
  return createLogger({ ...opts, syslogPrefix: isUnderJournald() });
}

/** True when stderr goes to journald (JOURNAL_STREAM set; unreadable counts as not set). */
export function isUnderJournald(): boolean {
  try {
    // Asked first so that older run flags without it never trigger a permission prompt.
    const access = Deno.permissions.querySync({ name: "env", variable: "JOURNAL_STREAM" });
    if (access.state !== "granted") return false;
    return (Deno.env.get("JOURNAL_STREAM") ?? "") !== "";
  } catch {
    return false;
  }
}

/** `log.notice` where the logger has it, else `log.info`. */
export function notice(log: Logger, event: string, fields?: LogFields): void {
  if (log.notice !== undefined) log.notice(event, fields);
  else log.info(event, fields);
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
  isEnabled() {
    return false;
  },
};

/** Formats one event as a line (without the newline). Exported for tests. */
export function formatEvent(
  format: LogFormat,
  time: Date,
  level: LogLevel,
  event: string,
  fields: LogFields,
): string {
  if (format === "json") {
    // JSON.stringify escapes quotes, backslashes and control characters: one line, no forged
    // keys. Our own keys are written first and a field never replaces them.
    const obj: Record<string, unknown> = { time: time.toISOString(), level, event };
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) obj[logKey(k)] = v;
    return JSON.stringify(obj);
  }
  return formatText(time, level, event, fields, undefined);
}

/**
 * A text line of `base`'s fields then `fields`' (as `{ ...base, ...fields }` would order them:
 * a key of both is written in base's place with the event's value).
 */
function formatText(
  time: Date,
  level: LogLevel,
  event: string,
  base: LogFields,
  fields: LogFields | undefined,
): string {
  let line = `${isoTime(time)} ${level} event=${escapeValue(event)}`;
  for (const k in base) {
    line += textField(k, fields !== undefined && Object.hasOwn(fields, k) ? fields[k] : base[k]);
  }
  if (fields !== undefined) {
    for (const k in fields) if (!Object.hasOwn(base, k)) line += textField(k, fields[k]);
  }
  return line;
}

/** ` key=value` (one per element of a list), or nothing for an undefined value. */
function textField(k: string, v: LogFields[string]): string {
  if (v === undefined) return "";
  const key = logKey(k);
  if (typeof v !== "object") return ` ${key}=${escapeValue(String(v))}`;
  let out = "";
  for (const item of v) out += ` ${key}=${escapeValue(item)}`;
  return out;
}

let lastTimeMs = NaN;
let lastTimeText = "";

/** `time.toISOString()`, kept for the millisecond (a busy MX writes several lines in one). */
function isoTime(time: Date): string {
  const ms = time.getTime();
  if (ms !== lastTimeMs) {
    lastTimeText = time.toISOString();
    lastTimeMs = ms;
  }
  return lastTimeText;
}

/**
 * A key as written: snake_case (`exitCode` → `exit_code`), only `[a-z0-9_]`, never one of
 * the keys every line starts with.
 */
export function logKey(key: string): string {
  const known = LOG_KEYS.get(key);
  if (known !== undefined) return known;
  const written = toLogKey(key);
  // Keys are names in the code, a small set: every line of every session looks them up.
  if (LOG_KEYS.size < MAX_LOG_KEYS) LOG_KEYS.set(key, written);
  return written;
}

const LOG_KEYS = new Map<string, string>();
const MAX_LOG_KEYS = 1000;

function toLogKey(key: string): string {
  const snake = key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase().replace(
    /[^a-z0-9_]/g,
    "_",
  );
  const k = snake === "" ? "_" : snake;
  return RESERVED_KEYS.has(k) ? `field_${k}` : k;
}

/**
 * A value as written in text format: bare when it is printable ASCII without space, `"`,
 * `=` or `\`; otherwise a JSON string literal (so any JSON parser reads it back) in which `=`,
 * DEL and every non-ASCII control, format, separator or unassigned code point is a `\uXXXX`
 * escape. A value therefore never holds `=`, a line break or anything a viewer shows as one.
 */
export function escapeValue(value: string): string {
  if (/^[\x21\x23-\x3c\x3e-\x5b\x5d-\x7e]+$/.test(value)) return value;
  return JSON.stringify(value).replace(
    // deno-lint-ignore no-control-regex -- DEL and C1 controls are exactly what must be escaped
    /[=\x7f-\x9f]|(?![\x00-\x7f])[\p{C}\p{Z}]/gu,
    (c) => unicodeEscape(c),
  );
}

function unicodeEscape(c: string): string {
  let out = "";
  // A code point above U+FFFF is two UTF-16 units, each escaped (the JSON way).
  for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, "0")}`;
  return out;
}
