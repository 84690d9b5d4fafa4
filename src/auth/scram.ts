/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677; SHA-1 kept for the RFC 5802 vector): verifier derivation,
 * message parsing, the server check and the client computations. Pure message logic: framing
 * (334/base64) and credential lookup live in `sasl_server.ts` / `sasl_client.ts`.
 * Channel binding is not implemented: `n,,` and `y,,` are accepted, `p=` is refused.
 */
import { createHash, createHmac, randomBytes } from "node:crypto";
import { constantTimeEqual, fromBase64, toBase64, utf8, xorBytes } from "./_bytes.ts";

/** Hash under SCRAM. */
export type ScramHash = "sha256" | "sha1";

/** What the server stores: never password-equivalent (RFC 5802 §3). */
export interface ScramVerifier {
  readonly salt: Uint8Array;
  readonly iterations: number;
  readonly storedKey: Uint8Array;
  readonly serverKey: Uint8Array;
}

/** Iterations for new verifiers (project choice, docs/protocol.md §3.4). */
export const SCRAM_DEFAULT_ITERATIONS = 10000;
/** RFC 7677 §4 minimum. */
export const SCRAM_MIN_ITERATIONS = 4096;
/**
 * Most iterations the client computes for a server (0.2 s here, a few seconds on a Pi): a
 * hostile provider, or anyone in the path without TLS, must not stall a poll with i=999999999.
 */
export const SCRAM_MAX_ITERATIONS = 1_000_000;
/** Salt length for new verifiers. */
export const SCRAM_SALT_BYTES = 16;
/** Bytes of randomness in each nonce (base64-encoded on the wire). */
export const SCRAM_NONCE_BYTES = 24;

/** A parse/check result: hostile input is an expected value. */
export type ScramResult<T> = { ok: true; value: T } | { ok: false; reason: string };

const STORED_PREFIX = "SCRAM-SHA-256$";

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

function hmac(hash: ScramHash, key: Uint8Array, data: string | Uint8Array): Uint8Array {
  return new Uint8Array(createHmac(hash, key).update(data).digest());
}

function digest(hash: ScramHash, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash(hash).update(data).digest());
}

function hashBytes(hash: ScramHash): number {
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

const WEBCRYPTO_HASH: Record<ScramHash, string> = { sha256: "SHA-256", sha1: "SHA-1" };

/** ClientKey, StoredKey and ServerKey from a salted password. */
export function keysFromSaltedPassword(
  salted: Uint8Array,
  hash: ScramHash = "sha256",
): { clientKey: Uint8Array; storedKey: Uint8Array; serverKey: Uint8Array } {
  const clientKey = hmac(hash, salted, "Client Key");
  return {
    clientKey,
    storedKey: digest(hash, clientKey),
    serverKey: hmac(hash, salted, "Server Key"),
  };
}

/** Derives a new verifier (random 16-byte salt, 10000 iterations unless given). */
export async function deriveScramVerifier(
  password: string,
  opts: { salt?: Uint8Array; iterations?: number; hash?: ScramHash } = {},
): Promise<ScramVerifier> {
  const iterations = opts.iterations ?? SCRAM_DEFAULT_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < SCRAM_MIN_ITERATIONS) {
    throw new RangeError(`SCRAM iterations must be at least ${SCRAM_MIN_ITERATIONS}`);
  }
  const salt = opts.salt ?? new Uint8Array(randomBytes(SCRAM_SALT_BYTES));
  const hash = opts.hash ?? "sha256";
  const { storedKey, serverKey } = keysFromSaltedPassword(
    await saltPassword(password, salt, iterations, hash),
    hash,
  );
  return { salt, iterations, storedKey, serverKey };
}

/** RFC 5803 text form: `SCRAM-SHA-256$<i>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>`. */
export function formatScramVerifier(v: ScramVerifier): string {
  return `${STORED_PREFIX}${v.iterations}:${toBase64(v.salt)}$${toBase64(v.storedKey)}:${
    toBase64(v.serverKey)
  }`;
}

/** Parses the RFC 5803 SHA-256 text form, or undefined when malformed. */
export function parseScramVerifier(text: string): ScramVerifier | undefined {
  const m = /^SCRAM-SHA-256\$(\d{1,9}):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/
    .exec(text);
  if (m === null) return undefined;
  const iterations = Number(m[1]);
  const salt = fromBase64(m[2] ?? "");
  const storedKey = fromBase64(m[3] ?? "");
  const serverKey = fromBase64(m[4] ?? "");
  if (
    salt === undefined || storedKey?.length !== 32 || serverKey?.length !== 32 ||
    iterations < SCRAM_MIN_ITERATIONS
  ) return undefined;
  return { salt, iterations, storedKey, serverKey };
}

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
  const bytes = random ? random(SCRAM_NONCE_BYTES) : new Uint8Array(randomBytes(SCRAM_NONCE_BYTES));
  return toBase64(bytes);
}

const NONCE_RE = /^[\x21-\x2b\x2d-\x7e]+$/;

/** The parsed client-first message. */
export interface ClientFirst {
  /** `n,,` / `y,,` / `n,a=…,` exactly as sent: echoed back in `c=`. */
  readonly gs2Header: string;
  readonly authzid: string | undefined;
  readonly user: string;
  readonly clientNonce: string;
  /** client-first-bare, part of AuthMessage. */
  readonly bare: string;
}

/** Parses client-first (RFC 5802 §7). `p=` channel binding is refused. */
export function parseClientFirst(text: string): ScramResult<ClientFirst> {
  const m = /^([nyp][^,]*),(a=[^,]*)?,(.*)$/s.exec(text);
  if (m === null) return { ok: false, reason: "no gs2-header" };
  const flag = m[1] ?? "";
  if (flag.startsWith("p")) return { ok: false, reason: "channel binding not supported" };
  if (flag !== "n" && flag !== "y") return { ok: false, reason: "bad cb-flag" };
  let authzid: string | undefined;
  if (m[2] !== undefined) {
    authzid = unescapeScramName(m[2].slice(2));
    if (authzid === undefined || authzid === "") return { ok: false, reason: "bad authzid" };
  }
  const bare = m[3] ?? "";
  const attrs = bare.split(",");
  const [nAttr, rAttr] = attrs;
  if (nAttr === undefined || !nAttr.startsWith("n=")) {
    return { ok: false, reason: bare.startsWith("m=") ? "mandatory extension" : "no n=" };
  }
  if (rAttr === undefined || !rAttr.startsWith("r=")) return { ok: false, reason: "no r=" };
  const escaped = unescapeScramName(nAttr.slice(2));
  const user = escaped === undefined ? undefined : saslPrep(escaped);
  if (user === undefined) return { ok: false, reason: "bad user name" };
  const clientNonce = rAttr.slice(2);
  if (!NONCE_RE.test(clientNonce)) return { ok: false, reason: "bad nonce" };
  return {
    ok: true,
    value: { gs2Header: `${flag},${m[2] ?? ""},`, authzid, user, clientNonce, bare },
  };
}

/** Builds server-first: `r=<cnonce+snonce>,s=<salt>,i=<iterations>`. */
export function buildServerFirst(fullNonce: string, v: ScramVerifier): string {
  return `r=${fullNonce},s=${toBase64(v.salt)},i=${v.iterations}`;
}

/** The parsed client-final message. */
export interface ClientFinal {
  readonly channelBinding: string;
  readonly nonce: string;
  readonly proof: Uint8Array;
  /** client-final-message-without-proof, part of AuthMessage. */
  readonly withoutProof: string;
}

/** Parses client-final (RFC 5802 §7): `c=…,r=…[,ext…],p=…`. */
export function parseClientFinal(text: string): ScramResult<ClientFinal> {
  const cut = text.lastIndexOf(",p=");
  if (cut < 0) return { ok: false, reason: "no proof" };
  const withoutProof = text.slice(0, cut);
  const proof = fromBase64(text.slice(cut + 3));
  if (proof === undefined) return { ok: false, reason: "bad proof encoding" };
  const [cAttr, rAttr] = withoutProof.split(",");
  if (cAttr === undefined || !cAttr.startsWith("c=")) return { ok: false, reason: "no c=" };
  if (rAttr === undefined || !rAttr.startsWith("r=")) return { ok: false, reason: "no r=" };
  return {
    ok: true,
    value: { channelBinding: cAttr.slice(2), nonce: rAttr.slice(2), proof, withoutProof },
  };
}

/** What the server remembers between its first and final messages. */
export interface ScramServerSession {
  readonly clientFirst: ClientFirst;
  readonly serverFirst: string;
  readonly fullNonce: string;
  readonly verifier: ScramVerifier;
}

/**
 * Checks client-final against the verifier (RFC 5802 §3: H(ClientProof XOR ClientSignature)
 * == StoredKey, compared in constant time). Returns the server-final `v=…` on success.
 */
export function checkClientFinal(
  session: ScramServerSession,
  final: ClientFinal,
  hash: ScramHash = "sha256",
): { ok: true; serverFinal: string } | { ok: false; reason: "credentials" | "malformed" } {
  if (final.channelBinding !== toBase64(utf8(session.clientFirst.gs2Header))) {
    return { ok: false, reason: "malformed" };
  }
  // The nonce must be exactly the one this server issued (client part + our part).
  if (final.nonce !== session.fullNonce) return { ok: false, reason: "malformed" };
  if (final.proof.length !== hashBytes(hash)) return { ok: false, reason: "malformed" };
  const authMessage = utf8(
    `${session.clientFirst.bare},${session.serverFirst},${final.withoutProof}`,
  );
  const clientSignature = hmac(hash, session.verifier.storedKey, authMessage);
  const clientKey = xorBytes(final.proof, clientSignature);
  if (!constantTimeEqual(digest(hash, clientKey), session.verifier.storedKey)) {
    return { ok: false, reason: "credentials" };
  }
  const serverSignature = hmac(hash, session.verifier.serverKey, authMessage);
  return { ok: true, serverFinal: `v=${toBase64(serverSignature)}` };
}

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
  const { clientKey, storedKey, serverKey } = keysFromSaltedPassword(salted, hash);
  const withoutProof = `c=${toBase64(utf8(opts.gs2Header))},r=${sf.nonce}`;
  const authMessage = utf8(`${opts.clientFirstBare},${opts.serverFirst},${withoutProof}`);
  const proof = xorBytes(clientKey, hmac(hash, storedKey, authMessage));
  return {
    ok: true,
    value: {
      clientFinal: `${withoutProof},p=${toBase64(proof)}`,
      expectedServerSignature: hmac(hash, serverKey, authMessage),
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
