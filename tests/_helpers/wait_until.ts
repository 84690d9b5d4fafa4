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

/** `p`'s outcome, or "no answer in N ms" if it has not settled by then (a call that may hang). */
export async function answerWithin(p: Promise<string>, ms: number): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((r) => timer = setTimeout(() => r(`no answer in ${ms} ms`), ms));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
