/**
 * A bounded wait for e2e tests: polls a condition instead of sleeping a guessed time, and
 * fails with what it waited for when the deadline passes.
 */

/** Polls `check` every `everyMs` until it holds; throws `timed out waiting for <what>` after `ms`. */
export async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  ms = 15_000,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}
