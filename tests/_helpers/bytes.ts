/** Byte helpers for tests: what a store iterator or a stream yields, joined into one array. */

import { concatBytes } from "../../src/wire/bytes.ts";

/** Every chunk `source` yields, joined (a stored body from `readBody`, a stream's output). */
export async function collectBytes(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  return concatBytes(await Array.fromAsync(source));
}
