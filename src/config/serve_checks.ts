/**
 * What `serve` needs of a config beyond what every command checks: a config that loads may
 * still be one serve cannot use (a customer's `fetch`-only config has no listener, and needs
 * none). Pure; `serve` refuses with exit 2, `check-config` warns.
 */
import type { Config } from "./types.ts";

/** Why `serve` cannot run with `config`, or undefined when it can. */
export function serveConfigProblem(config: Config): string | undefined {
  const submission = config.submission?.listen.length ?? 0;
  if (config.smtp.listen.length > 0 || config.odmr.listen.length > 0 || submission > 0) {
    return undefined;
  }
  return "smtp.listen, odmr.listen and submission.listen are all empty: serve would accept " +
    'no connection (set at least one, e.g. smtp.listen: ["0.0.0.0:25"])';
}
