/**
 * The plain config reader (src/config/_yaml_lite.ts, #13) against the `yaml` package it stands
 * in for: whatever it reads, it reads to the same value; whatever it cannot be sure of (or
 * `yaml` refuses) it leaves to `yaml` (undefined). Checked on the configs fetch and serve are
 * run with, on hand-picked cases at the edge of its shape, and on generated documents.
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import fc from "fast-check";
import YAML from "yaml";
import { parseSimpleYaml } from "../../src/config/_yaml_lite.ts";
import { REPO_ROOT } from "../_helpers/server_process.ts";

/** What `loadConfig` got from `yaml` before: the value, or "error". */
function full(text: string): unknown {
  const doc = YAML.parseDocument(text, { uniqueKeys: true });
  return doc.errors.length > 0 ? "error" : doc.toJS();
}

/** Lite's reading equals yaml's when there is one; returns whether lite read it. */
function agrees(text: string): boolean {
  const lite = parseSimpleYaml(text);
  if (lite === undefined) return false;
  assertEquals(lite.value, full(text), `lite differs from yaml on:\n${text}`);
  return true;
}

const FETCH_CONFIG = `# bench/_serve.ts: fetch side
data_dir: /tmp/odmr-bench-x/serve/fetch-data
log:
  level: warn
smtp:
  max_message_size: 100MB
fetch:
  server: 127.0.0.1:40123
  tls: none
  ca: /tmp/odmr-bench-x/cert.pem
  user: bench
  password_file: /tmp/odmr-bench-x/serve/fetch.password
  domains: [bench.example]
  deliver_to: smtp://127.0.0.1:40124
`;

const SERVE_CONFIG = `# a provider's config, as README.md shows them
hostname: mx.example.net
data_dir: /var/lib/odmr-relay
log:
  level: info # debug | info | warn | error
tls:
  cert: /etc/odmr-relay/fullchain.pem
  key: /etc/odmr-relay/privkey.pem
smtp:
  listen: ["0.0.0.0:25"]
  max_message_size: 50MB # SIZE limit
  timeout: 5m
odmr:
  listen: ["0.0.0.0:366", '127.0.0.1:3366'] # two
  require_tls: false
  auth_timeout: 60s
queue:
  # quota:
  #   bytes: 1GB
  max_age: 30d
  lease_time: 5m
fetch:
  domains: []
  interval:   5m   # spaces
`;

Deno.test("(#13) the plain reader reads fetch's and serve's usual configs as yaml does", () => {
  ok(agrees(FETCH_CONFIG), "fetch's config left to yaml");
  ok(agrees(SERVE_CONFIG), "serve's config left to yaml");
  ok(agrees(""), "empty file");
  ok(agrees("# only a comment\n\n"), "comments only");
  ok(agrees("a:\nb: 1\n"), "empty value");
  ok(agrees("a: # comment\n  b: yes\n  c: on\n  d: 010\n  e: 0\n"), "nested, 1.1 booleans");
  ok(agrees("a: null\nb: NULL\nc: True\nd: FALSE\ne: x y z\n"), "core schema words");
  agrees("a: x y  z\nb: a#b\n"); // may be left to yaml
  ok(agrees(`a: ""\nb: ''\nc: "it's"\nd: 'say "hi"'\ne: "#not a comment"\n`), "quoted");
  ok(agrees("a: 0.0.0.0:25\nb: [x, 'y z', \"1\", 2]\nc: 5m\nd: 998\n"), "addresses, lists");
});

Deno.test("(#13) config.example.yaml: yaml reads it (the plain reader leaves it or agrees)", async () => {
  const text = await Deno.readTextFile(`${REPO_ROOT}config.example.yaml`);
  agrees(text);
});

Deno.test("(#13) the plain reader leaves to yaml what it cannot be sure of, and yaml's errors", () => {
  const leftToYaml = [
    "a: 1.5", // float
    "a: 1e3",
    "a: .inf",
    "a: -1",
    "a: +1",
    "a: 0x1F",
    "a: 0o17",
    "a: 1234567890123456", // beyond 15 digits
    "a: ~",
    'a: "x\\ty"', // escapes
    "a: 'it''s'",
    "a: |\n  text",
    "a: >\n  text",
    "a: &x 1\nb: *x",
    "a: !!str 1",
    "a:\n  - x",
    "- x",
    "a: {b: 1}",
    "a: [x, [y]]",
    "a: [x,]",
    "a: [x: y]",
    "a: [x",
    "a: b: c", // yaml: error
    "a: b:",
    "a: 1\na: 2", // duplicate key: yaml error
    "a:\n  b: 1\n c: 2", // bad dedent
    "a:\n    b: 1\n  c: 2",
    " a: 1",
    "a:\tb",
    "a: 1\r\n",
    "\uFEFFa: 1",
    "A: 1",
    "true: 1",
    "null: 1",
    "a : 1",
    "a:b",
    "a: x # c\n  y", // continuation line
    "---\na: 1",
    "a: 'x' y",
    'a: "x"#c',
    "a: é",
    // JS's trim() strips these, YAML does not (review of 362dba6): a trailing NBSP would have
    // changed data_dir, a form feed passed the host name check, NBSP indentation nested.
    "data_dir: /srv/q\u00A0",
    "hostname: mx.example.net\f",
    "log:\n\u00A0\u00A0level: info",
    "a: 1\n\u00A0\u00A0# pasted comment",
    "a: x\u3000",
    "a: x\u2028",
    "a: x\v",
    "a: 1\u0085b: 2",
    "a: ./data",
    "a: x\t",
  ];
  for (const text of leftToYaml) {
    assertEquals(
      parseSimpleYaml(text),
      undefined,
      `read by the plain reader: ${JSON.stringify(text)}`,
    );
  }
});

const KEYS = ["a", "b", "max_age", "true", "A", "a b", "c"];
const WORDS = [
  "x",
  "1",
  "010",
  "0755",
  "1_000",
  "12:30",
  "2026-11-28",
  "0b101",
  "1.",
  "nan",
  "1.5",
  "1e3",
  "-1",
  "0x1",
  "null",
  "Null",
  "~",
  "true",
  "False",
  "yes",
  "5m",
  "100MB",
  "127.0.0.1:25",
  "smtp://h:1",
  "/var/lib/x",
  "./x",
  "a b",
  "a: b",
  "a:",
  "a #c",
  "a#c",
  '"q"',
  '"q\\"',
  "'q'",
  "'it''s'",
  '"a,b"',
  "[x]",
  "[x, y]",
  "[]",
  "[x,]",
  "{a: 1}",
  "&a x",
  "*a",
  "!x y",
  "|",
  "-",
  "- x",
  "",
  " ",
  "é",
];

Deno.test("(#13) generated documents: the plain reader never reads one differently from yaml", () => {
  const line = fc.record({
    indent: fc.constantFrom(0, 0, 0, 1, 2, 2, 4),
    key: fc.constantFrom(...KEYS),
    value: fc.constantFrom(...WORDS),
    comment: fc.constantFrom("", "", " # c", "#c", "  #"),
    kind: fc.constantFrom("entry", "entry", "entry", "comment", "blank"),
  });
  let read = 0;
  fc.assert(
    fc.property(fc.array(line, { maxLength: 8 }), (lines) => {
      const text = lines.map((l) => {
        const pad = " ".repeat(l.indent);
        if (l.kind === "blank") return "";
        if (l.kind === "comment") return `${pad}#${l.value}`;
        return `${pad}${l.key}:${l.value === "" ? "" : " "}${l.value}${l.comment}`;
      }).join("\n");
      if (agrees(text)) read++;
    }),
    { numRuns: 3000, seed: 13 },
  );
  // The property means something only if many documents were read by the plain reader.
  ok(read > 300, `only ${read} of 3000 generated documents were read by the plain reader`);
});
