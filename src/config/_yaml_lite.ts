/**
 * A reader for the plain shape most config files have — block mappings of snake_case keys,
 * scalars, and flow sequences of scalars, with comments — that gives the same value as the
 * `yaml` package (YAML 1.2, core schema), or undefined for anything else, which the full
 * parser then reads (`_yaml_full.ts`). The `yaml` package costs `fetch --once` ~14 ms of start-up
 * to load and run cold, and an idle `serve` its compiled code for good (#13). Conservative by
 * design: whatever might be read differently (quotes with escapes, numbers other than plain
 * decimal integers, `-` sequences, flow mappings, anchors, tags, any character outside printable
 * ASCII and LF, multi-line scalars, duplicate keys) is left to the full parser.
 */

/** The value of `text` as the `yaml` package reads it, or undefined: not of the plain shape. */
export function parseSimpleYaml(text: string): { readonly value: unknown } | undefined {
  // Only printable ASCII and LF: JS's trim() strips every Unicode space (NBSP, form feed,
  // U+3000, …) where YAML strips only spaces, so such a file is the full parser's.
  if (/[^\x20-\x7e\n]/.test(text)) return undefined;
  const lines: { indent: number; body: string }[] = [];
  for (const raw of text.split("\n")) {
    const body = raw.trimStart();
    if (body === "" || body.startsWith("#")) continue;
    lines.push({ indent: raw.length - body.length, body: body.trimEnd() });
  }
  if (lines.length === 0) return { value: null };
  if (lines[0]?.indent !== 0) return undefined;
  const parser = new Parser(lines);
  const value = parser.mapping(0);
  return value === undefined || !parser.isDone ? undefined : { value };
}

const KEY = /^([a-z_][a-z0-9_]*):(?: +(.*))?$/;
/** Keys the core schema would read as something other than that string. */
const SPECIAL_KEYS = new Set(["null", "true", "false"]);
/** A plain scalar this reader takes: no indicator first, no `: `, ` #` or flow characters. */
const PLAIN = /^[A-Za-z0-9_/][A-Za-z0-9_./@:+=-]*(?: [A-Za-z0-9_./@:+=-]+)*$/;
const DECIMAL = /^[0-9]{1,15}$/;
/** The core schema's float and other integer forms, and its null/bool spellings. */
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const NULLS = new Set(["null", "Null", "NULL"]);
const BOOLS = new Map([
  ["true", true],
  ["True", true],
  ["TRUE", true],
  ["false", false],
  ["False", false],
  ["FALSE", false],
]);

class Parser {
  readonly #lines: readonly { indent: number; body: string }[];
  #at = 0;

  constructor(lines: readonly { indent: number; body: string }[]) {
    this.#lines = lines;
  }

  get isDone(): boolean {
    return this.#at === this.#lines.length;
  }

  /** The block mapping whose keys are at `indent`; undefined when not of the plain shape. */
  mapping(indent: number): Record<string, unknown> | undefined {
    const out: Record<string, unknown> = {};
    while (this.#at < this.#lines.length) {
      const line = this.#lines[this.#at] as { indent: number; body: string };
      if (line.indent < indent) break;
      if (line.indent > indent) return undefined;
      const m = KEY.exec(line.body);
      if (m === null) return undefined;
      const key = m[1] as string;
      if (SPECIAL_KEYS.has(key) || Object.hasOwn(out, key)) return undefined;
      this.#at++;
      const rest = m[2];
      let value: unknown;
      if (rest === undefined || rest.startsWith("#")) {
        const next = this.#lines[this.#at];
        value = next !== undefined && next.indent > indent ? this.mapping(next.indent) : null;
      } else {
        value = inlineValue(rest);
      }
      if (value === undefined) return undefined;
      out[key] = value;
    }
    return out;
  }
}

/** The value after `key: ` (comment included); undefined when not of the plain shape. */
function inlineValue(text: string): unknown {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || !isCommentOrEmpty(text.slice(close + 1))) return undefined;
    const inner = text.slice(1, close).trim();
    if (inner === "") return [];
    const items: unknown[] = [];
    for (const part of inner.split(",")) {
      const trimmed = part.trim();
      // In a flow collection `:` may start a mapping entry: left to the full parser.
      if (trimmed.includes(":") && !trimmed.startsWith(`"`) && !trimmed.startsWith("'")) {
        return undefined;
      }
      const item = scalar(trimmed);
      if (item === undefined) return undefined;
      items.push(item);
    }
    return items;
  }
  const quote = text[0];
  if (quote === `"` || quote === "'") {
    const close = text.indexOf(quote, 1);
    if (close < 0 || !isCommentOrEmpty(text.slice(close + 1))) return undefined;
    return scalar(text.slice(0, close + 1));
  }
  const hash = text.indexOf(" #");
  return scalar(hash < 0 ? text : text.slice(0, hash).trimEnd());
}

/** A quoted string without escapes, or a plain scalar resolved as the core schema does. */
function scalar(text: string): unknown {
  const quote = text[0];
  if (quote === `"` || quote === "'") {
    const inner = text.slice(1, -1);
    if (text.length < 2 || text.at(-1) !== quote) return undefined;
    if (inner.includes(quote) || inner.includes("\\")) return undefined;
    return inner;
  }
  if (!PLAIN.test(text) || text.includes(": ") || text.endsWith(":")) return undefined;
  if (DECIMAL.test(text)) return Number(text);
  if (FLOAT.test(text) || /^0[ox]/.test(text)) return undefined;
  if (NULLS.has(text)) return null;
  const bool = BOOLS.get(text);
  return bool ?? text;
}

function isCommentOrEmpty(text: string): boolean {
  return text === "" || /^ +(?:#.*)?$/.test(text);
}
