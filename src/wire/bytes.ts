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

/**
 * Writes command lines, each with CRLF, into `out` from `at`: the offset after them, or -1
 * (nothing to rely on written) when they do not fit or one is not ASCII (the caller encodes
 * those as UTF-8 instead). An op-free encoding of the few short lines of an envelope.
 */
export function putAsciiLines(lines: readonly string[], out: Uint8Array, at: number): number {
  let i = at;
  for (const line of lines) {
    if (i + line.length + 2 > out.length) return -1;
    for (let k = 0; k < line.length; k++) {
      const c = line.charCodeAt(k);
      if (c >= 0x80) return -1;
      out[i++] = c;
    }
    out[i++] = 13;
    out[i++] = 10;
  }
  return i;
}

const encoder = new TextEncoder();

/** Encodes command lines with CRLF, one array each (UTF-8). */
export function encodeLines(lines: readonly string[]): Uint8Array[] {
  return lines.map((l) => encoder.encode(`${l}\r\n`));
}

/** Command lines with CRLF, as one array (UTF-8). */
export function encodeLineGroup(lines: readonly string[]): Uint8Array {
  let size = 0;
  for (const line of lines) size += line.length + 2;
  const out = new Uint8Array(size);
  if (putAsciiLines(lines, out, 0) === size) return out;
  return concatBytes(encodeLines(lines));
}

/** `text` in UTF-8: ASCII copied without a TextEncoder call (an op), anything else encoded. */
export function encodeText(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) return encoder.encode(text);
    out[i] = c;
  }
  return out;
}
