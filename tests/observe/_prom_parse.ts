/**
 * A small parser of the Prometheus text exposition format 0.0.4 for tests, written apart from
 * prom-client: `# TYPE` lines and samples `name{label="value",…} value`. Throws on a line it
 * cannot read, so a malformed exposition fails the test that scrapes it.
 */

/** One sample line. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A parsed exposition. */
export interface Exposition {
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

/** Parses `text`; throws naming the first line it cannot read. */
export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const [i, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    if (line.startsWith("#")) {
      const m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (m) types.set(m[1] as string, m[2] as string);
      else if (!line.startsWith("# HELP ")) throw new Error(`line ${i + 1}: bad comment: ${line}`);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`line ${i + 1}: not a sample: ${line}`);
    samples.push({
      name: m[1] as string,
      labels: parseLabels(m[2] ?? "", i + 1),
      value: parseValue(m[3] as string, i + 1),
    });
  }
  return { types, samples };
}

function parseLabels(text: string, lineNo: number): Record<string, string> {
  const out: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const m = LABEL.exec(text);
    if (!m) throw new Error(`line ${lineNo}: bad labels: {${text}}`);
    out[m[1] as string] = (m[2] as string).replace(
      /\\(.)/g,
      (_, c: string) => c === "n" ? "\n" : c,
    );
  }
  return out;
}

function parseValue(text: string, lineNo: number): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  const v = Number(text);
  if (Number.isNaN(v)) throw new Error(`line ${lineNo}: bad value: ${text}`);
  return v;
}

/** The value of the one sample `name` whose labels include `labels`, or undefined. */
export function valueOf(
  exp: Exposition,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  const found = exp.samples.filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  if (found.length > 1) {
    throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  }
  return found[0]?.value;
}

/** Every sample of `name`. */
export function samplesOf(exp: Exposition, name: string): Sample[] {
  return exp.samples.filter((s) => s.name === name);
}
