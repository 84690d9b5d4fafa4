/**
 * The boolean flags of `serve` and `fetch` (`--once`, `-v`/`--verbose`, `-q`/`--quiet`),
 * strict: anything else is a usage error naming the argument. A few lines instead of
 * node:util's parseArgs, whose polyfill (node:util and what it loads) cost `fetch --once`
 * ~10 ms of start-up and an idle `serve` resident memory (#13). The tool commands (`user`,
 * `queue`, `dkim`) keep parseArgs: they take values and positionals.
 */

/** A flag: its long name (the key of the result) and an optional one-letter short form. */
export interface BooleanFlag {
  readonly long: string;
  readonly short?: string;
}

/** The flags given (true when present), or why the arguments are refused. */
export type FlagsResult =
  | { readonly ok: true; readonly values: Readonly<Record<string, true>> }
  | { readonly ok: false; readonly message: string };

/**
 * Parses `args` against `flags`: `--name`, `-x`, grouped short flags (`-vq`), each at most
 * meaningful once (a repeat is harmless). `--` ends the flags, as with parseArgs: a trailing
 * `--` is accepted, and whatever follows it is a positional argument. `--name=value`, unknown
 * flags and positional arguments are refused.
 */
export function parseBooleanFlags(
  args: readonly string[],
  flags: readonly BooleanFlag[],
): FlagsResult {
  const values: Record<string, true> = {};
  const end = args.indexOf("--");
  if (end >= 0 && end + 1 < args.length) {
    return { ok: false, message: `Unexpected argument "${args[end + 1]}"` };
  }
  for (const arg of end < 0 ? args : args.slice(0, end)) {
    if (arg.startsWith("--") && arg.length > 2) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const flag = flags.find((f) => f.long === name);
      if (flag === undefined) return unknown(eq < 0 ? arg : arg.slice(0, eq));
      if (eq >= 0) return { ok: false, message: `Option "--${name}" does not take a value` };
      values[flag.long] = true;
    } else if (arg.startsWith("-") && arg.length > 1) {
      for (const letter of arg.slice(1)) {
        const flag = flags.find((f) => f.short === letter);
        if (flag === undefined) return unknown(`-${letter}`);
        values[flag.long] = true;
      }
    } else {
      return { ok: false, message: `Unexpected argument "${arg}"` };
    }
  }
  return { ok: true, values };
}

function unknown(option: string): FlagsResult {
  return { ok: false, message: `Unknown option "${option}"` };
}
