/**
 * Reads the relay's log lines back into fields (text key=value with JSON-string quoting, or
 * JSON), so tests assert log events by field instead of by regular expression over text.
 * A repeated key (one `to=` per recipient) gives a list.
 */

/** One event: its fields, each a string or (repeated / JSON array) a list of strings. */
export type LogEvent = Record<string, string | string[]>;

/** Parses one line; undefined for a line that is not an event. */
export function parseLogLine(line: string): LogEvent | undefined {
  const body = line.replace(/^<\d>/, "");
  if (body.startsWith("{")) {
    try {
      const obj = JSON.parse(body) as Record<string, unknown>;
      const out: LogEvent = {};
      for (const [k, v] of Object.entries(obj)) {
        out[k] = Array.isArray(v) ? v.map(String) : String(v);
      }
      return out;
    } catch {
      return undefined;
    }
  }
  const m = /^(\S+) (debug|info|warn|error) (event=.*)$/.exec(body);
  if (!m) return undefined;
  const out: LogEvent = { time: m[1] as string, level: m[2] as string };
  const re = /([a-z0-9_]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?: |$)/y;
  const rest = m[3] as string;
  let f: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (f = re.exec(rest)) !== null) {
    const raw = f[2] as string;
    const value = raw.startsWith('"') ? JSON.parse(raw) as string : raw;
    const key = f[1] as string;
    const had = out[key];
    out[key] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
  }
  return out;
}

/** Every event in `logs` (text or JSON lines), in order. */
export function allEvents(logs: string): LogEvent[] {
  return logs.split("\n").map(parseLogLine).filter((e): e is LogEvent => e !== undefined);
}

/** Every event named `event` in `logs` (text or JSON lines). */
export function eventsNamed(logs: string, event: string): LogEvent[] {
  return allEvents(logs).filter((e) => e.event === event);
}

/** A field as a list (absent: empty). */
export function listOf(e: LogEvent, key: string): string[] {
  const v = e[key];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}
