/**
 * `fetch`: the customer side (connect, AUTH, ATRN, hand mail to `fetch.deliver_to`).
 * Not implemented yet: TODO(#5). Exits 2 so scripts do not mistake it for "no mail".
 */
import type { Config } from "../config/types.ts";

/** Runs `fetch`; for now only says that it does not exist yet. */
export function fetchCommand(
  _config: Config,
  opts: { once: boolean; stderr: (text: string) => void },
): Promise<number> {
  opts.stderr(
    `error: Cannot run fetch${opts.once ? " --once" : ""}: not implemented yet (issue #5)\n`,
  );
  return Promise.resolve(2);
}
