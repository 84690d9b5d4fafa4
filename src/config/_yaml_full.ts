/**
 * The `yaml` package's reading of a config file (YAML 1.2, duplicate keys refused), for what
 * `_yaml_lite.ts` leaves to it. Loaded only then by `loadConfig` (#13: start-up and an idle
 * serve's memory).
 */
import YAML from "yaml";
import { ConfigError } from "./_validator.ts";

/** The document's value; a syntax error is a ConfigError with its line and column. */
export function parseYamlText(text: string, source: string | undefined): unknown {
  const lineCounter = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  const first = doc.errors[0];
  if (first !== undefined) {
    const pos = lineCounter.linePos(first.pos[0]);
    const at = ` at line ${pos.line}, column ${pos.col}`;
    throw new ConfigError(source, undefined, `is not valid YAML${at}: ${firstLine(first)}`);
  }
  try {
    // The package stops an alias expansion past its bound ("billion laughs") and an alias to
    // no anchor with a ReferenceError here, after parsing.
    return doc.toJS();
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
    const why = /excessive alias count/i.test(err.message)
      ? "too many aliases (an expansion this large is refused)"
      : err.message;
    throw new ConfigError(source, undefined, `is not valid YAML: ${why}`);
  }
}

function firstLine(err: Error): string {
  return (err.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
}
