/** The arguments of a `… list [--json]` subcommand (`user list`, `dkim list`). */
import { parseArgs } from "node:util";

/** `--json` and nothing else; anything more is a usage error naming it. */
export function parseListArgs(
  args: string[],
): { ok: true; isJson: boolean } | { ok: false; message: string } {
  const { values, positionals } = parseArgs({
    args,
    options: { json: { type: "boolean" } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0) {
    return { ok: false, message: `Unexpected argument "${positionals[0]}"` };
  }
  return { ok: true, isJson: values.json ?? false };
}
