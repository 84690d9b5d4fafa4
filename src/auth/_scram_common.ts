/**
 * What the SCRAM client and server (`scram_client.ts`, `scram.ts`) share: the hash names,
 * bounds and result type, SASLprep, the PBKDF2 of the password (WebCrypto), name escaping and
 * nonces. No node:crypto here: `fetch` loads the client side without it (start-up).
 */
import { toBase64, utf8 } from "./_bytes.ts";

/** Hash under SCRAM. */
export type ScramHash = "sha256" | "sha1";

/** RFC 7677 §4 minimum. */
export const SCRAM_MIN_ITERATIONS = 4096;

/**
 * Most iterations the client computes for a server (0.2 s here, a few seconds on a Pi): a
 * hostile provider, or anyone in the path without TLS, must not stall a poll with i=999999999.
 */
export const SCRAM_MAX_ITERATIONS = 1_000_000;

/** Bytes of randomness in each nonce (base64-encoded on the wire). */
export const SCRAM_NONCE_BYTES = 24;

/** A parse/check result: hostile input is an expected value. */
export type ScramResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * SASLprep (RFC 4013), without the bidi rule: maps non-ASCII spaces to SP, drops the
 * "mapped to nothing" characters, NFKC-normalises, refuses control, private-use, surrogate and
 * non-character code points. Returns undefined when prohibited or empty.
 */
export function saslPrep(text: string): string | undefined {
  let mapped = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (isMappedToNothing(cp)) continue;
    mapped += isNonAsciiSpace(cp) ? " " : ch;
  }
  const out = mapped.normalize("NFKC");
  if (out.length === 0) return undefined;
  for (const ch of out) {
    if (isProhibited(ch.codePointAt(0) ?? 0)) return undefined;
  }
  return out;
}

function isMappedToNothing(cp: number): boolean {
  return cp === 0xad || cp === 0x34f || cp === 0x1806 || (cp >= 0x180b && cp <= 0x180d) ||
    (cp >= 0x200b && cp <= 0x200d) || cp === 0x2060 || (cp >= 0xfe00 && cp <= 0xfe0f) ||
    cp === 0xfeff;
}

function isNonAsciiSpace(cp: number): boolean {
  return cp === 0xa0 || cp === 0x1680 || (cp >= 0x2000 && cp <= 0x200b) || cp === 0x202f ||
    cp === 0x205f || cp === 0x3000;
}

function isProhibited(cp: number): boolean {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0xd800 && cp <= 0xdfff) ||
    (cp >= 0xe000 && cp <= 0xf8ff) || (cp >= 0xfdd0 && cp <= 0xfdef) ||
    (cp & 0xfffe) === 0xfffe || cp >= 0xf0000 || cp === 0x2028 || cp === 0x2029 ||
    (cp >= 0x200e && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
    (cp >= 0x206a && cp <= 0x206f);
}

export function hashBytes(hash: ScramHash): number {
  return hash === "sha256" ? 32 : 20;
}

/**
 * PBKDF2 of the SASLprepped password (async: it is the slow part). WebCrypto's PBKDF2, not
 * node:crypto's: same bytes (the RFC vectors in tests/auth/scram_test.ts), but 10000
 * iterations of SHA-256 took ~2 ms there against ~5 ms (~8 ms the first time) with node's
 * pbkdf2 (Deno 2.9), on fetch's way to ATRN and in every PLAIN/LOGIN check.
 */
export async function saltPassword(
  password: string,
  salt: Uint8Array,
  iterations: number,
  hash: ScramHash = "sha256",
): Promise<Uint8Array> {
  const prepared = saslPrep(password);
  if (prepared === undefined) {
    throw new RangeError("Password is empty or has characters SASLprep forbids");
  }
  // WebCrypto takes views of an ArrayBuffer only (the types allow a SharedArrayBuffer too).
  const raw = utf8(prepared) as Uint8Array<ArrayBuffer>;
  const key = await crypto.subtle.importKey("raw", raw, "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: WEBCRYPTO_HASH[hash], salt: new Uint8Array(salt), iterations },
    key,
    hashBytes(hash) * 8,
  );
  return new Uint8Array(bits);
}

export const WEBCRYPTO_HASH: Record<ScramHash, string> = { sha256: "SHA-256", sha1: "SHA-1" };

/** RFC 5802 §5.1 saslname escaping: `=` → `=3D`, `,` → `=2C`. */
export function escapeScramName(name: string): string {
  return name.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

/** Reverses `escapeScramName`; undefined when a `=` is not followed by `2C` or `3D`. */
export function unescapeScramName(text: string): string | undefined {
  if (/=(?!2C|3D)/.test(text)) return undefined;
  return text.replaceAll("=2C", ",").replaceAll("=3D", "=");
}

/** A fresh printable nonce (base64 never contains `,`). */
export function makeScramNonce(random?: (n: number) => Uint8Array): string {
  const bytes = random
    ? random(SCRAM_NONCE_BYTES)
    : crypto.getRandomValues(new Uint8Array(SCRAM_NONCE_BYTES));
  return toBase64(bytes);
}

export const NONCE_RE = /^[\x21-\x2b\x2d-\x7e]+$/;
