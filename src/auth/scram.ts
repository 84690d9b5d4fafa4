/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677; SHA-1 kept for the RFC 5802 vector): verifier derivation,
 * message parsing and the server check; the client computations (`scram_client.ts`) and what both
 * sides share (`_scram_common.ts`) are re-exported. Pure message logic: framing (334/base64) and
 * credential lookup live in `sasl_server.ts` / `sasl_client.ts`.
 * Channel binding is not implemented: `n,,` and `y,,` are accepted, `p=` is refused.
 */
import { loadNodeCrypto, nodeCrypto, randomBytes } from "./node_crypto.ts";
import { constantTimeEqual, fromBase64, toBase64, utf8, xorBytes } from "./_bytes.ts";
import {
  hashBytes,
  NONCE_RE,
  saltPassword,
  saslPrep,
  SCRAM_MIN_ITERATIONS,
  type ScramHash,
  type ScramResult,
  unescapeScramName,
} from "./_scram_common.ts";

export {
  escapeScramName,
  makeScramNonce,
  saltPassword,
  saslPrep,
  SCRAM_MAX_ITERATIONS,
  SCRAM_MIN_ITERATIONS,
  SCRAM_NONCE_BYTES,
  type ScramHash,
  type ScramResult,
  unescapeScramName,
} from "./_scram_common.ts";
export {
  checkServerFinal,
  computeClientFinal,
  parseServerFirst,
  type ScramClientProof,
  type ServerFirst,
} from "./scram_client.ts";

/** What the server stores: never password-equivalent (RFC 5802 §3). */
export interface ScramVerifier {
  readonly salt: Uint8Array;
  readonly iterations: number;
  readonly storedKey: Uint8Array;
  readonly serverKey: Uint8Array;
}

/** Iterations for new verifiers (project choice, docs/protocol.md §3.4). */
export const SCRAM_DEFAULT_ITERATIONS = 10000;
/** Salt length for new verifiers. */
export const SCRAM_SALT_BYTES = 16;

const STORED_PREFIX = "SCRAM-SHA-256$";

function hmac(hash: ScramHash, key: Uint8Array, data: string | Uint8Array): Uint8Array {
  return new Uint8Array(nodeCrypto().createHmac(hash, key).update(data).digest());
}

function digest(hash: ScramHash, data: Uint8Array): Uint8Array {
  return new Uint8Array(nodeCrypto().createHash(hash).update(data).digest());
}

/** ClientKey, StoredKey and ServerKey from a salted password (after `loadNodeCrypto()`). */
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
  const salt = opts.salt ?? randomBytes(SCRAM_SALT_BYTES);
  const hash = opts.hash ?? "sha256";
  await loadNodeCrypto();
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
 * == StoredKey, compared in constant time). Returns the server-final `v=…` on success. After
 * `loadNodeCrypto()`.
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
