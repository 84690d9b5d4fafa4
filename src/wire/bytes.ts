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

const utf8 = new TextDecoder();

/**
 * A short line of bytes (a reply line: at most a few hundred) as text: ASCII without a
 * TextDecoder call (an op per line otherwise), anything else as UTF-8, invalid sequences as
 * U+FFFD (what TextDecoder gives).
 */
export function decodeLine(line: Uint8Array): string {
  for (let i = 0; i < line.length; i++) {
    if ((line[i] ?? 0) >= 0x80) return utf8.decode(line);
  }
  return String.fromCharCode.apply(null, line as unknown as number[]);
}
