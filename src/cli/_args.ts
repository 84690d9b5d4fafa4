/**
 * What the tool commands (`user`, `queue`, `dkim`) share: their exit codes, one way to pick the
 * subcommand and parse its flags (strict: an unknown flag is a usage error that names it), and
 * the usage error itself. Parsing is pure; only `usageError` writes.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { errorText } from "../errors.ts";
import type { CliIo } from "./io.ts";
import { PROGRAM_NAME } from "../version.ts";

/** Arguments that do not make a command, with the reason for people. */
export interface Refusal {
  readonly ok: false;
  readonly message: string;
}

/** One typed command, or why the arguments do not make one. */
export type Parsed<T> = { readonly ok: true; readonly command: T } | Refusal;

/** Parses the arguments after the subcommand's name. */
export type SubcommandParser<T> = (args: readonly string[]) => Parsed<T>;

/**
 * Picks the parser of `argv[0]` in `parsers` and runs it on the rest. A missing or unknown
 * subcommand, and anything a parser throws (`parseArgs` names the offending flag: "Unknown
 * option '--foo'"), is a refusal; `expected` lists the subcommands for it.
 */
export function parseSubcommand<T>(
  argv: readonly string[],
  parsers: Readonly<Record<string, SubcommandParser<T>>>,
  expected: string,
): Parsed<T> {
  const [sub, ...args] = argv;
  if (sub === undefined) return { ok: false, message: `Missing subcommand: expected ${expected}` };
  const parse = Object.hasOwn(parsers, sub) ? parsers[sub] : undefined;
  if (parse === undefined) {
    return { ok: false, message: `Unknown subcommand "${sub}": expected ${expected}` };
  }
  try {
    return parse(args);
  } catch (err) {
    return { ok: false, message: errorText(err) };
  }
}

/**
 * `parseArgs`, strict, with positionals; throws on an unknown flag, a missing value, or a flag
 * that takes one value given twice (`"--domain" given twice`, as `--config`: parseArgs would keep
 * the last one silently, and `queue delete --domain a --domain b --yes` delete b's mail alone).
 * A boolean flag given twice means it once.
 */
export function parseFlags<O extends ParseArgsOptionsConfig>(args: readonly string[], options: O) {
  const parsed = parseArgs({
    args: [...args],
    options,
    strict: true,
    allowPositionals: true,
    tokens: true,
  });
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== "option") continue;
    const option = options[token.name];
    if (option?.type !== "string" || option.multiple === true) continue;
    if (seen.has(token.name)) throw new Error(`"--${token.name}" given twice`);
    seen.add(token.name);
  }
  return { values: parsed.values, positionals: parsed.positionals };
}

/** The refusal of an argument nobody asked for. */
export function unexpected(arg: string | undefined): Refusal {
  return { ok: false, message: `Unexpected argument "${arg ?? ""}"` };
}

/** A subcommand that takes `--json` and nothing else (`user list`, `dkim list`, `queue summary`). */
export function parseJsonOnly<K extends string>(
  kind: K,
  args: readonly string[],
): Parsed<{ readonly kind: K; readonly isJson: boolean }> {
  const { values, positionals } = parseFlags(args, { json: { type: "boolean" } });
  if (positionals.length > 0) return unexpected(positionals[0]);
  return { ok: true, command: { kind, isJson: values.json === true } };
}

/** Exit codes of the tool commands (README.md "Exit codes"); `user test` adds 3. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/**
 * Writes the refusal to stderr as one line that points to `COMMAND --help` (the command is the
 * first word of `usage`, "Usage: queue list …"), as serve and fetch do; returns the exit code for
 * usage (2).
 */
export function usageError(io: Pick<CliIo, "stderr">, message: string, usage: string): number {
  const command = /^Usage: (\S+)/.exec(usage)?.[1] ?? "";
  io.stderr(
    `error: ${flagErrorText(message)}: run "${PROGRAM_NAME} ${command} --help" for usage\n`,
  );
  return EXIT_USAGE;
}

/**
 * node:util parseArgs' refusals in the CLI's own words: "Unknown option '--foo'. To specify a
 * positional argument starting with a '-', …" is `Unknown option "--foo"`, "Option '-d,
 * --domain <value>' argument missing" is `Missing value for "--domain"`, "Option '--json' does
 * not take an argument" is `"--json" takes no value`. Other text is kept.
 */
export function flagErrorText(message: string): string {
  const unknown = /^Unknown option '([^']*)'/.exec(message);
  if (unknown) return `Unknown option "${unknown[1]}"`;
  const option =
    /^Option '(?:-\w, )?(--?[^' ]+)(?: <value>)?' (argument missing|does not take an argument)/
      .exec(message);
  if (option) {
    return option[2] === "argument missing"
      ? `Missing value for "${option[1]}"`
      : `"${option[1]}" takes no value`;
  }
  return message;
}
