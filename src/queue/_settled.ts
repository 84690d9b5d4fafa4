/**
 * The synchronous SQLite backend behind the async `QueueStore` interface: runs a function now
 * and hands its value or its exception over as a promise (never a synchronous throw).
 */

/** `fn()`'s value as a resolved promise, or its exception as a rejected one. */
export function settled<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}
