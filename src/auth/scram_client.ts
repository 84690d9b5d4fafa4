/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677): reads server-first, computes
 * client-final and checks server-final. Its hashes are WebCrypto's, not node:crypto's, so that
 * `fetch` does not load node:crypto on its way to ATRN (start-up, #13); same bytes (the RFC
 * vectors in tests/auth/scram_test.ts). Framing lives in `sasl_client.ts`.
 */
import { constantTimeEqual, fromBase64, toBase64, utf8, xorBytes } from "./_bytes.ts";
import {
  NONCE_RE,
  saltPassword,
  SCRAM_MAX_ITERATIONS,
  SCRAM_MIN_ITERATIONS,
  type ScramHash,
  type ScramResult,
  WEBCRYPTO_HASH,
} from "./_scram_common.ts";

/** The parsed server-first message, seen by the client. */
export interface ServerFirst {
  readonly nonce: string;
  readonly salt: Uint8Array;
  readonly iterations: number;
}

/** Parses server-first (RFC 5802 §7). */
export function parseServerFirst(text: string): ScramResult<ServerFirst> {
  if (text.startsWith("m=")) return { ok: false, reason: "mandatory extension" };
  const m = /^r=([^,]+),s=([^,]+),i=(\d{1,9})(,.*)?$/.exec(text);
  if (m === null) return { ok: false, reason: "malformed server-first" };
  const salt = fromBase64(m[2] ?? "");
  if (salt === undefined) return { ok: false, reason: "bad salt" };
  return { ok: true, value: { nonce: m[1] ?? "", salt, iterations: Number(m[3]) } };
}

/** Client-side state between client-final and server-final. */
export interface ScramClientProof {
  readonly clientFinal: string;
  readonly expectedServerSignature: Uint8Array;
}

/**
 * Computes client-final for `password` and the server signature the client must then see.
 * Refuses a server nonce that does not extend ours or an iteration count outside the bounds.
 */
export async function computeClientFinal(
  opts: {
    password: string;
    clientFirstBare: string;
    gs2Header: string;
    clientNonce: string;
    serverFirst: string;
    hash?: ScramHash;
    minIterations?: number;
  },
): Promise<ScramResult<ScramClientProof>> {
  const hash = opts.hash ?? "sha256";
  const parsed = parseServerFirst(opts.serverFirst);
  if (!parsed.ok) return parsed;
  const sf = parsed.value;
  if (!sf.nonce.startsWith(opts.clientNonce) || sf.nonce.length <= opts.clientNonce.length) {
    return { ok: false, reason: "server nonce does not extend the client nonce" };
  }
  if (!NONCE_RE.test(sf.nonce)) return { ok: false, reason: "bad server nonce" };
  if (sf.iterations < (opts.minIterations ?? SCRAM_MIN_ITERATIONS)) {
    return { ok: false, reason: `iteration count ${sf.iterations} is too low` };
  }
  if (sf.iterations > SCRAM_MAX_ITERATIONS) {
    return { ok: false, reason: `iteration count ${sf.iterations} is too high` };
  }
  const salted = await saltPassword(opts.password, sf.salt, sf.iterations, hash);
  const clientKey = await hmac(hash, salted, "Client Key");
  const storedKey = await digest(hash, clientKey);
  const serverKey = await hmac(hash, salted, "Server Key");
  const withoutProof = `c=${toBase64(utf8(opts.gs2Header))},r=${sf.nonce}`;
  const authMessage = utf8(`${opts.clientFirstBare},${opts.serverFirst},${withoutProof}`);
  const proof = xorBytes(clientKey, await hmac(hash, storedKey, authMessage));
  return {
    ok: true,
    value: {
      clientFinal: `${withoutProof},p=${toBase64(proof)}`,
      expectedServerSignature: await hmac(hash, serverKey, authMessage),
    },
  };
}

/** Checks server-final `v=…` against the expected signature (constant time). */
export function checkServerFinal(text: string, expected: Uint8Array): ScramResult<true> {
  if (text.startsWith("e=")) return { ok: false, reason: `server error ${text.slice(2)}` };
  if (!text.startsWith("v=")) return { ok: false, reason: "malformed server-final" };
  const got = fromBase64(text.slice(2).split(",")[0] ?? "");
  if (got === undefined || !constantTimeEqual(got, expected)) {
    return { ok: false, reason: "server signature does not match" };
  }
  return { ok: true, value: true };
}

async function hmac(
  hash: ScramHash,
  key: Uint8Array,
  data: string | Uint8Array,
): Promise<Uint8Array> {
  // WebCrypto takes views of an ArrayBuffer only (the types allow a SharedArrayBuffer too).
  const k = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: WEBCRYPTO_HASH[hash] },
    false,
    ["sign"],
  );
  const bytes = (typeof data === "string" ? utf8(data) : data) as Uint8Array<ArrayBuffer>;
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, bytes));
}

async function digest(hash: ScramHash, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest(WEBCRYPTO_HASH[hash], data as Uint8Array<ArrayBuffer>),
  );
}
