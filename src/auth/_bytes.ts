/**
 * Byte helpers private to `src/auth/`: UTF-8, hex, base64, constant-time comparison.
 * Constant time here means: the time depends only on the lengths, never on the contents.
 */
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes strict UTF-8, or undefined when the bytes are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Lower-case hex. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Parses even-length hex, or undefined. */
export function fromHex(text: string): Uint8Array | undefined {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return undefined;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

// Base64 is the wire codec's; these names are kept for the auth modules.
export { decodeBase64 as fromBase64, encodeBase64 as toBase64 } from "../wire/base64.ts";

/**
 * Compares in time that depends only on the lengths: every byte pair is looked at, with no
 * early exit (not node:crypto's timingSafeEqual: `fetch` would load node:crypto for it).
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  // A length mismatch still does one comparison's worth of work, so it is not faster.
  const other = a.length === b.length ? b : a;
  let diff = a.length === b.length ? 0 : 1;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (other[i] ?? 0);
  return diff === 0;
}

/** XOR of two equal-length arrays. */
export function xorBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}
