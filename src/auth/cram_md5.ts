/**
 * CRAM-MD5 (RFC 2195) with the Dovecot `{CRAM-MD5}` stored form: the HMAC-MD5 inner and outer
 * midstates of the password, so the server answers any challenge without the plaintext.
 * The stored form is password-equivalent for CRAM-MD5 (docs/protocol.md §3.1): guard it as such.
 */
import { constantTimeEqual, fromHex, toHex, utf8 } from "./_bytes.ts";
import { Md5, md5, MD5_BLOCK_BYTES, MD5_INITIAL_STATE, md5Compress } from "./md5.ts";
import type { Md5State } from "./md5.ts";
import { bytesToState, stateToBytes } from "./md5.ts";

/** The HMAC-MD5 key schedule of one password: two MD5 chaining states. */
export interface CramContext {
  readonly inner: Md5State;
  readonly outer: Md5State;
}

/** Prefix of the stored text form. */
export const CRAM_MD5_PREFIX = "{CRAM-MD5}";

/** Computes the HMAC-MD5 midstates for `password` (UTF-8). */
export function cramContextFromPassword(password: string): CramContext {
  let key = utf8(password);
  // RFC 2104 §2: keys longer than the block are hashed first.
  if (key.length > MD5_BLOCK_BYTES) key = md5(key);
  const ipad = new Uint8Array(MD5_BLOCK_BYTES).fill(0x36);
  const opad = new Uint8Array(MD5_BLOCK_BYTES).fill(0x5c);
  key.forEach((b, i) => {
    ipad[i] = b ^ 0x36;
    opad[i] = b ^ 0x5c;
  });
  const ctx = {
    inner: md5Compress(MD5_INITIAL_STATE, ipad),
    outer: md5Compress(MD5_INITIAL_STATE, opad),
  };
  ipad.fill(0);
  opad.fill(0);
  key.fill(0);
  return ctx;
}

/**
 * Whether `password` is the one whose midstates `stored` holds (constant time): two MD5 blocks,
 * where the scrypt hash of PLAIN and LOGIN costs tens of milliseconds and 16 MiB.
 */
export function isCramPassword(stored: CramContext, password: string): boolean {
  const ctx = cramContextFromPassword(password);
  const isInner = constantTimeEqual(stateToBytes(ctx.inner), stateToBytes(stored.inner));
  const isOuter = constantTimeEqual(stateToBytes(ctx.outer), stateToBytes(stored.outer));
  return isInner && isOuter;
}

/** Dovecot layout: outer a,b,c,d then inner a,b,c,d, little-endian, as `{CRAM-MD5}` + 64 hex. */
export function formatCramVerifier(ctx: CramContext): string {
  const bytes = new Uint8Array(32);
  bytes.set(stateToBytes(ctx.outer), 0);
  bytes.set(stateToBytes(ctx.inner), 16);
  return CRAM_MD5_PREFIX + toHex(bytes);
}

/** Parses the stored form (with or without the prefix), or undefined when malformed. */
export function parseCramVerifier(text: string): CramContext | undefined {
  const body = text.startsWith(CRAM_MD5_PREFIX) ? text.slice(CRAM_MD5_PREFIX.length) : text;
  if (body.length !== 64) return undefined;
  const bytes = fromHex(body);
  if (bytes === undefined) return undefined;
  return { outer: bytesToState(bytes, 0), inner: bytesToState(bytes, 16) };
}

/** The lower-case hex HMAC-MD5 of `challenge` (the exact bytes sent, brackets included). */
export function cramDigest(ctx: CramContext, challenge: Uint8Array): string {
  const innerDigest = new Md5(ctx.inner, MD5_BLOCK_BYTES).update(challenge).digest();
  return toHex(new Md5(ctx.outer, MD5_BLOCK_BYTES).update(innerDigest).digest());
}

/** The client answer `user SP hexdigest` as bytes (before base64). */
export function cramResponse(user: string, password: string, challenge: Uint8Array): Uint8Array {
  return utf8(`${user} ${cramDigest(cramContextFromPassword(password), challenge)}`);
}
