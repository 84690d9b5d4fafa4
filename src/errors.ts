/** Error text for people: every layer may import this file; it imports nothing. */

/** The message of an Error, or the value as text (a thrown value need not be an Error). */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `err` itself when it is an Error, else an Error with its text (for reject() and causes). */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
