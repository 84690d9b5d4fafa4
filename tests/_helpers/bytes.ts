/** Byte helpers for tests: what a store iterator or a stream yields, joined into one array. */

import { concatBytes } from "../../src/wire/bytes.ts";

/** Every chunk `source` yields, joined (a stored body from `readBody`, a stream's output). */
export async function collectBytes(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<Uint8Array> {
  return concatBytes(await Array.fromAsync(source));
}

/** Whether `data` ends with the bytes of `tail` (a body after the headers a relay added). */
export function endsWithBytes(data: Uint8Array, tail: Uint8Array): boolean {
  if (data.length < tail.length) return false;
  const off = data.length - tail.length;
  return tail.every((b, i) => data[off + i] === b);
}
