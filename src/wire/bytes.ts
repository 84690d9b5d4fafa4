/**
 * Byte-array helpers shared by the codecs and the roles. Pure. One part is returned as is
 * (no copy), so callers must not mutate the result.
 */

/** The parts joined into one array (the single part itself when there is only one). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0] !== undefined) return parts[0];
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
