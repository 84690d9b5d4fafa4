/**
 * Slow password hash for PLAIN and LOGIN: scrypt (node:crypto, async) in a PHC-like text form
 * `$scrypt$ln=14,r=8,p=1$<b64 salt>$<b64 hash>`. Comparison is constant time; the plaintext is
 * never kept.
 */
import { loadNodeCrypto, randomBytes } from "./node_crypto.ts";
import { constantTimeEqual, fromBase64, toBase64, utf8 } from "./_bytes.ts";

/** scrypt cost parameters: N = 2^logN. */
export interface ScryptParams {
  readonly logN: number;
  readonly r: number;
  readonly p: number;
}

/** Defaults for new hashes: N=16384, r=8, p=1 (16 MiB, tens of ms). */
export const SCRYPT_DEFAULT_PARAMS: ScryptParams = { logN: 14, r: 8, p: 1 };

const SALT_BYTES = 16;
const KEY_BYTES = 32;
const MAX_LOG_N = 20;

/**
 * scrypts computed at once; the others wait their turn in order. Each takes `128 * N * r` bytes
 * (16 MiB at the defaults) on a thread of its own: unbounded, 32 connections sending AUTH PLAIN
 * at once grew serve by ~500 MB (tests/security/auth_password_memory_test.ts). Two keep both
 * cores of a small VPS busy; a wait is bounded by the AUTH exchanges ahead of it (at most one
 * per connection, itself under the connection limits).
 */
export const MAX_CONCURRENT_SCRYPTS = 2;

let running = 0;
const waiting: (() => void)[] = [];

/** Runs `fn` once fewer than MAX_CONCURRENT_SCRYPTS are running (FIFO). */
async function inTurn<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT_SCRYPTS) {
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else {
    running++;
  }
  try {
    return await fn();
  } finally {
    // The slot passes straight to the next waiter (running stays the same), else it is freed.
    const next = waiting.shift();
    if (next !== undefined) next();
    else running--;
  }
}

function runScrypt(password: string, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  return inTurn(() => scryptNow(password, salt, params));
}

async function scryptNow(
  password: string,
  salt: Uint8Array,
  params: ScryptParams,
): Promise<Uint8Array> {
  const { scrypt } = await loadNodeCrypto();
  const N = 2 ** params.logN;
  // node's default maxmem (32 MiB) is exactly 128*N*r for logN=15; leave headroom.
  const maxmem = 256 * N * params.r + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(utf8(password), salt, KEY_BYTES, { N, r: params.r, p: params.p, maxmem }, (err, key) => {
      if (err) reject(err);
      else resolve(new Uint8Array(key));
    });
  });
}

/** Hashes `password` with a fresh random salt. */
export async function hashPassword(
  password: string,
  opts: { params?: ScryptParams } = {},
): Promise<string> {
  const params = opts.params ?? SCRYPT_DEFAULT_PARAMS;
  const salt = randomBytes(SALT_BYTES);
  const key = await runScrypt(password, salt, params);
  return `$scrypt$ln=${params.logN},r=${params.r},p=${params.p}$${toBase64(salt)}$${toBase64(key)}`;
}

/** The parsed stored form. */
export interface ParsedPasswordHash {
  readonly params: ScryptParams;
  readonly salt: Uint8Array;
  readonly key: Uint8Array;
}

/** Parses the stored form, or undefined when malformed or out of range. */
export function parsePasswordHash(text: string): ParsedPasswordHash | undefined {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/
    .exec(text);
  if (m === null) return undefined;
  const params = { logN: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  const salt = fromBase64(m[4] ?? "");
  const key = fromBase64(m[5] ?? "");
  if (
    params.logN < 1 || params.logN > MAX_LOG_N || params.r < 1 || params.p < 1 ||
    salt === undefined || key === undefined || key.length === 0
  ) return undefined;
  return { params, salt, key };
}

/** True when `password` matches `stored`; false (never throws) when `stored` is malformed. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parsePasswordHash(stored);
  if (parsed === undefined) return false;
  const key = await runScrypt(password, parsed.salt, parsed.params);
  return constantTimeEqual(key, parsed.key);
}
