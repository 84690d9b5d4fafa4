/**
 * The log line format: text key=value lines that a peer cannot forge a field into (#10), JSON
 * lines that parse back to the same values, snake_case keys, and the syslog prefix.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createLogger, escapeValue, formatEvent, logKey, notice } from "../../src/observe/log.ts";
import type { LogFields, Logger } from "../../src/observe/log.ts";

const T = new Date("2026-11-28T05:00:00.000Z");

/** Splits a text line the way a logfmt reader does: bare values, or JSON string literals. */
function parseText(line: string): Map<string, string> {
  const out = new Map<string, string>();
  const rest = line.replace(/^\S+ \S+ /, "");
  const re = /([a-z0-9_]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?: |$)/y;
  let m: RegExpExecArray | null;
  while ((m = re.exec(rest)) !== null) {
    const raw = m[2] as string;
    out.set(m[1] as string, raw.startsWith('"') ? JSON.parse(raw) : raw);
    if (re.lastIndex >= rest.length) break;
  }
  assert(re.lastIndex === rest.length || rest === "", `the whole line parses: ${line}`);
  return out;
}

const HOSTILE: { what: string; value: string }[] = [
  { what: "a forged field after a space (#10)", value: "x remote=203.0.113.7" },
  { what: "a closing quote, then a field", value: 'x" remote=203.0.113.7 y="' },
  { what: "a backslash before the quote", value: 'x\\" remote=203.0.113.7' },
  { what: "a line break starting a forged event", value: "x\n2026 warn event=auth_failed" },
  { what: "a bare CR", value: "x\rremote=1.2.3.4" },
  { what: "NUL, tab and DEL", value: "a\x00b\tc\x7fd" },
  { what: "C1 control (NEL)", value: "a\u0085remote=1.2.3.4" },
  { what: "Unicode line and paragraph separators", value: "a\u2028b\u2029remote=1.2.3.4" },
  { what: "a no-break space that looks like a separator", value: "a\u00a0remote=1.2.3.4" },
  { what: "a right-to-left override", value: "a\u202eremote=1.2.3.4" },
  { what: "a lone surrogate", value: "a\ud800b" },
  { what: "an empty value", value: "" },
  { what: "only an equals sign", value: "=" },
];

Deno.test("log text format: no peer value can forge a key=value or break the line (#10)", async (t) => {
  for (const { what, value } of HOSTILE) {
    await t.step(what, () => {
      const line = formatEvent("text", T, "warn", "auth_failed", {
        remote: "192.0.2.1",
        user: value,
        mechanism: "PLAIN",
      });
      assert(!/[\r\n\u0085\u2028\u2029]/.test(line), `one line: ${JSON.stringify(line)}`);
      // Every "=" in the line is one of ours: exactly event, remote, user, mechanism.
      assertEquals(line.split("=").length - 1, 4, line);
      assertEquals([...line.matchAll(/remote=(\S+)/g)].map((m) => m[1]), ["192.0.2.1"]);
      const fields = parseText(line);
      assertEquals(fields.get("user"), value, "the value reads back exactly");
      assertEquals(fields.get("remote"), "192.0.2.1");
      assertEquals(fields.get("event"), "auth_failed");
      // Nothing a Unicode-aware \s would take for a space inside a value.
      assert(!/[^\S ]/u.test(line), JSON.stringify(line));
    });
  }
});

Deno.test("log text format: plain values stay bare and readable", () => {
  const table: { value: string; want: string }[] = [
    { value: "192.0.2.1", want: "192.0.2.1" },
    { value: "alice@example.org", want: "alice@example.org" },
    { value: "<redacted>", want: "<redacted>" },
    { value: "2001:db8::1", want: "2001:db8::1" },
    { value: "two words", want: '"two words"' },
    { value: "k=v", want: '"k\\u003dv"' },
    { value: "grüße", want: '"grüße"' },
  ];
  for (const { value, want } of table) assertEquals(escapeValue(value), want, value);
});

Deno.test("log json format: hostile values parse back exactly, and never replace our keys", () => {
  for (const { value } of HOSTILE) {
    const line = formatEvent("json", T, "warn", "auth_failed", {
      remote: "192.0.2.1",
      user: value,
      event: "forged",
      level: "debug",
    });
    assert(!line.includes("\n"), line);
    const obj = JSON.parse(line);
    assertEquals(obj.user, value);
    assertEquals(obj.event, "auth_failed");
    assertEquals(obj.level, "warn");
    assertEquals(obj.field_event, "forged");
  }
});

Deno.test("log keys are snake_case whatever the caller wrote", () => {
  assertEquals(logKey("exitCode"), "exit_code");
  assertEquals(logKey("discardedBytes"), "discarded_bytes");
  assertEquals(logKey("grace_ms"), "grace_ms");
  assertEquals(logKey("to domain"), "to_domain");
  assertEquals(logKey("time"), "field_time");
  const line = formatEvent("text", T, "info", "next_poll", { inMs: 5, exitCode: 0 });
  assertEquals(line, "2026-11-28T05:00:00.000Z info event=next_poll in_ms=5 exit_code=0");
});

Deno.test("log syslogPrefix puts the priority journald reads before each line", () => {
  const lines: string[] = [];
  const log = createLogger({
    level: "debug",
    format: "text",
    sink: (l) => lines.push(l),
    now: () => T,
    syslogPrefix: true,
  });
  const fields: LogFields = { a: 1 };
  log.debug("d", fields);
  log.info("i", fields);
  log.warn("w", fields);
  log.error("e", fields);
  assertEquals(lines.map((l) => l.slice(0, 3)), ["<7>", "<6>", "<4>", "<3>"]);
});

Deno.test("log lists: one key=value per element in text, an array in JSON", () => {
  const to = ["a@example.org", "b c@example.org"];
  assertEquals(
    formatEvent("text", T, "info", "queued", { id: "m1", to }),
    '2026-11-28T05:00:00.000Z info event=queued id=m1 to=a@example.org to="b c@example.org"',
  );
  assertEquals(JSON.parse(formatEvent("json", T, "info", "queued", { to })).to, to);
});

Deno.test("log isEnabled says which levels are written, at the configured level and below it (#13)", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "info", format: "text", sink: (l) => lines.push(l) })
    .with({ session: "s1" });
  assertEquals(
    (["debug", "info", "warn", "error"] as const).map((l) => log.isEnabled?.(l)),
    [false, true, true, true],
  );
  const debug = createLogger({ level: "debug", format: "text", sink: (l) => lines.push(l) });
  assertEquals(debug.isEnabled?.("debug"), true);
  // What isEnabled says is what is written.
  log.debug("not_written");
  log.info("written");
  assertEquals(lines.map((l) => l.split(" ")[2]), ["event=written"]);
});

Deno.test("log keys: a key asked again is written the same (memoised)", () => {
  for (let i = 0; i < 2; i++) {
    assertEquals(logKey("peerAddress"), "peer_address");
    assertEquals(logKey("level"), "field_level");
    assertEquals(logKey("Bad-Key!"), "bad_key_");
  }
});

Deno.test("a logger's own fields come first, an event's field of the same name wins in its place (#13)", () => {
  // Text lines are written from both field sets without merging them: the same line as
  // formatting `{ ...base, ...fields }`, in text and in JSON.
  for (const format of ["text", "json"] as const) {
    const lines: string[] = [];
    let ms = T.getTime();
    const log = createLogger({
      level: "info",
      format,
      sink: (l) => lines.push(l),
      now: () => new Date(ms),
    }).with({ conn: "c1", proto: "smtp", gone: "x" }).with({ session: "s1" });
    const fields: LogFields = { proto: "odmr", gone: undefined, id: "m1", to: ["a@b.example"] };
    log.info("queued", fields);
    ms += 1;
    log.info("queued");
    const base = { conn: "c1", proto: "smtp", gone: "x", session: "s1" };
    assertEquals(lines, [
      formatEvent(format, T, "info", "queued", { ...base, ...fields }),
      formatEvent(format, new Date(T.getTime() + 1), "info", "queued", base),
    ]);
  }
  assertEquals(
    formatEvent("text", T, "info", "e", { conn: "c1", proto: "odmr", id: "m1", to: ["a@b.c"] }),
    "2026-11-28T05:00:00.000Z info event=e conn=c1 proto=odmr id=m1 to=a@b.c",
  );
});

Deno.test("log notice is written at level info whatever the level set; other info lines are not", () => {
  const lines: string[] = [];
  const log = createLogger({
    level: "error",
    format: "text",
    sink: (l) => lines.push(l),
    now: () => T,
  })
    .with({ node: "a" });
  log.info("ready");
  log.warn("slow");
  notice(log, "listening", { proto: "smtp", address: "127.0.0.1:41234", tls: "none" });
  assertEquals(lines, [
    "2026-11-28T05:00:00.000Z info event=listening node=a proto=smtp address=127.0.0.1:41234 tls=none",
  ]);
  // A logger without notice (a test's own) gets the event as info.
  const seen: string[] = [];
  const plain: Logger = {
    debug() {},
    info: (e: string) => void seen.push(e),
    warn() {},
    error() {},
    with: () => plain,
  };
  notice(plain, "listening");
  assertEquals(seen, ["listening"]);
});
