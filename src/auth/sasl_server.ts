/**
 * Server side of the SASL mechanisms for the provider's AUTH command, protocol-agnostic: the
 * ODMR session does the `334`/base64 framing, the TLS policy and the throttling. Unknown users
 * run the same computations against dummy verifiers and fail the same way (no timing oracle).
 */
import { loadNodeCrypto, nodeCrypto, randomBytes } from "./node_crypto.ts";
import { constantTimeEqual, decodeUtf8, toHex, utf8 } from "./_bytes.ts";
import {
  type CramContext,
  cramContextFromPassword,
  cramDigest,
  isCramPassword,
} from "./cram_md5.ts";
import { verifyPassword } from "./password_hash.ts";
import {
  buildServerFirst,
  checkClientFinal,
  type ClientFirst,
  makeScramNonce,
  parseClientFinal,
  parseClientFirst,
  SCRAM_DEFAULT_ITERATIONS,
  SCRAM_SALT_BYTES,
  type ScramServerSession,
  type ScramVerifier,
} from "./scram.ts";
import type { CredentialStore } from "./store.ts";

/** The mechanisms we implement. */
export type SaslMechanismName = "SCRAM-SHA-256" | "CRAM-MD5" | "PLAIN" | "LOGIN";

/** Every mechanism, strongest first (also the advertising order). */
export const SASL_MECHANISMS: readonly SaslMechanismName[] = [
  "SCRAM-SHA-256",
  "CRAM-MD5",
  "PLAIN",
  "LOGIN",
];

/** One step of an exchange, for the session to frame. */
export type SaslStep =
  /** Send as `334 base64(data)`. */
  | { kind: "challenge"; data: Uint8Array }
  /** `data`: SCRAM server-final, sent in a `334` before `235`. */
  | { kind: "success"; user: string; data?: Uint8Array }
  | { kind: "failure"; reason: "credentials" | "malformed" | "unsupported"; user?: string };

/** One AUTH exchange. `next()` after a success or failure returns a `malformed` failure. */
export interface SaslServerExchange {
  readonly mechanism: SaslMechanismName;
  start(initialResponse: Uint8Array | undefined): Promise<SaslStep>;
  next(response: Uint8Array): Promise<SaslStep>;
}

/** The part of the store the exchanges read (one query per AUTH: no caching). */
export type VerifierSource = Pick<CredentialStore, "getVerifiers">;

/** What every exchange is given. */
export interface SaslServerOptions {
  readonly store: VerifierSource;
  /** Used in the CRAM-MD5 challenge `<random.timestamp@hostname>`. */
  readonly hostname: string;
  /** CSPRNG bytes (tests inject a fixed source). */
  readonly random?: (n: number) => Uint8Array;
  /** Milliseconds since the epoch, for the CRAM-MD5 timestamp. */
  readonly now?: () => number;
  /**
   * Derives the SCRAM salt (and keys) shown for an unknown user name. Keep it across restarts
   * (src/auth/fake_salt_key.ts): a salt that changes at restart while real ones do not tells
   * which names exist. Default: a key made at process start.
   */
  readonly fakeSaltKey?: Uint8Array;
  /**
   * True when `user`'s exchange is refused whatever the password (an AUTH cap: throttle.ts
   * `isRefusedAnyway`): PLAIN and LOGIN then fail without the scrypt check.
   */
  readonly isRefusedAnyway?: (user: string) => boolean;
}

/** The mechanism named `text` (case-insensitive), or undefined when we do not implement it. */
export function parseSaslMechanismName(text: string): SaslMechanismName | undefined {
  const upper = text.toUpperCase();
  return SASL_MECHANISMS.find((m) => m === upper);
}

/** True for mechanisms that send the password in clear: offer them only under TLS. */
export function isPlaintextMechanism(mech: SaslMechanismName): boolean {
  return mech === "PLAIN" || mech === "LOGIN";
}

/** Starts an exchange for `mech`. */
export function createSaslServer(
  mech: SaslMechanismName,
  opts: SaslServerOptions,
): SaslServerExchange {
  switch (mech) {
    case "SCRAM-SHA-256":
      return new ScramSha256Exchange(opts);
    case "CRAM-MD5":
      return new CramMd5Exchange(opts);
    case "PLAIN":
      return new PlainExchange(opts);
    case "LOGIN":
      return new LoginExchange(opts);
    default: {
      const never: never = mech;
      throw new Error(`unknown SASL mechanism ${String(never)}`);
    }
  }
}

const MALFORMED: SaslStep = { kind: "failure", reason: "malformed" };
const MAX_FIELD_OCTETS = 255;

// Fallback when no persistent key is given: stable within a process only.
const PROCESS_FAKE_SALT_KEY = randomBytes(32);
const DUMMY_CRAM: CramContext = cramContextFromPassword(toHex(randomBytes(16)));
// Same default cost as real hashes; the random key never matches.
const DUMMY_PASSWORD_HASH = `$scrypt$ln=14,r=8,p=1$${btoa("0123456789abcdef")}$${
  btoa(String.fromCharCode(...randomBytes(32)))
}`;

function dummyScramVerifier(user: string, key: Uint8Array): ScramVerifier {
  const mac = (label: string, n: number) =>
    new Uint8Array(nodeCrypto().createHmac("sha256", key).update(`${label}\0${user}`).digest())
      .subarray(0, n);
  return {
    salt: mac("salt", SCRAM_SALT_BYTES),
    iterations: SCRAM_DEFAULT_ITERATIONS,
    storedKey: mac("stored", 32),
    serverKey: mac("server", 32),
  };
}

function randomSource(opts: SaslServerOptions): (n: number) => Uint8Array {
  return opts.random ?? randomBytes;
}

/** RFC 2195. The challenge is unique per exchange; a replayed answer fails against it. */
class CramMd5Exchange implements SaslServerExchange {
  readonly mechanism = "CRAM-MD5";
  #opts: SaslServerOptions;
  #state: { kind: "new" } | { kind: "challenged"; challenge: Uint8Array } | { kind: "done" } = {
    kind: "new",
  };

  constructor(opts: SaslServerOptions) {
    this.#opts = opts;
  }

  start(initialResponse: Uint8Array | undefined): Promise<SaslStep> {
    if (this.#state.kind !== "new" || initialResponse !== undefined) return this.#fail();
    const random = toHex(randomSource(this.#opts)(16));
    const now = (this.#opts.now ?? Date.now)();
    const challenge = utf8(`<${random}.${now}@${this.#opts.hostname}>`);
    this.#state = { kind: "challenged", challenge };
    return Promise.resolve({ kind: "challenge", data: challenge });
  }

  next(response: Uint8Array): Promise<SaslStep> {
    if (this.#state.kind !== "challenged") return this.#fail();
    const challenge = this.#state.challenge;
    this.#state = { kind: "done" };
    // `user SP digest`: the name is what is left of the 32 hex digits and the space, bounded in
    // octets as PLAIN's and SCRAM's are (it counted UTF-16 code units: 1020 octets of emoji).
    if (response.length - 33 > MAX_FIELD_OCTETS) return Promise.resolve(MALFORMED);
    const text = decodeUtf8(response);
    const m = text === undefined ? null : /^(\S+) ([0-9a-fA-F]{32})$/.exec(text);
    if (m === null) return Promise.resolve(MALFORMED);
    const user = m[1] ?? "";
    const got = utf8((m[2] ?? "").toLowerCase());
    const ctx = this.#opts.store.getVerifiers(user)?.cramMd5;
    const want = utf8(cramDigest(ctx ?? DUMMY_CRAM, challenge));
    const isMatch = constantTimeEqual(got, want) && ctx !== undefined;
    return Promise.resolve(
      isMatch ? { kind: "success", user } : { kind: "failure", reason: "credentials", user },
    );
  }

  #fail(): Promise<SaslStep> {
    this.#state = { kind: "done" };
    return Promise.resolve(MALFORMED);
  }
}

/**
 * Checks a user name and password against the scrypt hash, dummy hash for unknown users. When
 * the reply is refused anyway (`isRefusedAnyway`) scrypt does not run: the stored CRAM-MD5
 * midstates tell a right password from a wrong one for two MD5 blocks, so that the owner's
 * right password is no failure (throttle.ts counts only failures); without them, a failure.
 */
async function checkPassword(
  opts: SaslServerOptions,
  user: string,
  password: string,
): Promise<SaslStep> {
  if (opts.isRefusedAnyway?.(user) === true) {
    const cram = opts.store.getVerifiers(user)?.cramMd5;
    return cram !== undefined && isCramPassword(cram, password)
      ? { kind: "success", user }
      : { kind: "failure", reason: "credentials", user };
  }
  const stored = opts.store.getVerifiers(user)?.passwordHash;
  const isMatch = await verifyPassword(password, stored ?? DUMMY_PASSWORD_HASH);
  return isMatch && stored !== undefined
    ? { kind: "success", user }
    : { kind: "failure", reason: "credentials", user };
}

function decodeField(bytes: Uint8Array, isEmptyAllowed: boolean): string | undefined {
  if (bytes.length > MAX_FIELD_OCTETS || (!isEmptyAllowed && bytes.length === 0)) {
    return undefined;
  }
  const text = decodeUtf8(bytes);
  return text !== undefined && !text.includes("\0") ? text : undefined;
}

/** RFC 4616: `[authzid] NUL authcid NUL passwd`. */
class PlainExchange implements SaslServerExchange {
  readonly mechanism = "PLAIN";
  #opts: SaslServerOptions;
  #state: "new" | "waiting" | "done" = "new";

  constructor(opts: SaslServerOptions) {
    this.#opts = opts;
  }

  start(initialResponse: Uint8Array | undefined): Promise<SaslStep> {
    if (this.#state !== "new") return this.#fail();
    if (initialResponse === undefined) {
      this.#state = "waiting";
      return Promise.resolve({ kind: "challenge", data: new Uint8Array(0) });
    }
    return this.#check(initialResponse);
  }

  next(response: Uint8Array): Promise<SaslStep> {
    if (this.#state !== "waiting") return this.#fail();
    return this.#check(response);
  }

  #check(message: Uint8Array): Promise<SaslStep> {
    this.#state = "done";
    const first = message.indexOf(0);
    const second = first < 0 ? -1 : message.indexOf(0, first + 1);
    if (second < 0 || message.indexOf(0, second + 1) >= 0) return Promise.resolve(MALFORMED);
    const authzid = decodeField(message.subarray(0, first), true);
    const authcid = decodeField(message.subarray(first + 1, second), false);
    const password = decodeField(message.subarray(second + 1), false);
    if (authzid === undefined || authcid === undefined || password === undefined) {
      return Promise.resolve(MALFORMED);
    }
    // No proxy authorization (docs/protocol.md §3.2): a different authzid is refused like bad
    // credentials, after the same work so it does not stand out.
    if (authzid !== "" && authzid !== authcid) {
      return checkPassword(this.#opts, authcid, password).then(() => ({
        kind: "failure",
        reason: "credentials",
        user: authcid,
      }));
    }
    return checkPassword(this.#opts, authcid, password);
  }

  #fail(): Promise<SaslStep> {
    this.#state = "done";
    return Promise.resolve(MALFORMED);
  }
}

/** De facto LOGIN: "Username:" then "Password:"; the user name may come as initial response. */
class LoginExchange implements SaslServerExchange {
  readonly mechanism = "LOGIN";
  #opts: SaslServerOptions;
  #state: { kind: "new" } | { kind: "user" } | { kind: "password"; user: string } | {
    kind: "done";
  } = { kind: "new" };

  constructor(opts: SaslServerOptions) {
    this.#opts = opts;
  }

  start(initialResponse: Uint8Array | undefined): Promise<SaslStep> {
    if (this.#state.kind !== "new") return this.#fail();
    if (initialResponse === undefined) {
      this.#state = { kind: "user" };
      return Promise.resolve({ kind: "challenge", data: utf8("Username:") });
    }
    this.#state = { kind: "user" };
    return this.next(initialResponse);
  }

  next(response: Uint8Array): Promise<SaslStep> {
    const state = this.#state;
    if (state.kind === "user") {
      const user = decodeField(response, false);
      if (user === undefined) return this.#fail();
      this.#state = { kind: "password", user };
      return Promise.resolve({ kind: "challenge", data: utf8("Password:") });
    }
    if (state.kind === "password") {
      this.#state = { kind: "done" };
      const password = decodeField(response, false);
      if (password === undefined) return Promise.resolve(MALFORMED);
      return checkPassword(this.#opts, state.user, password);
    }
    return this.#fail();
  }

  #fail(): Promise<SaslStep> {
    this.#state = { kind: "done" };
    return Promise.resolve(MALFORMED);
  }
}

/** RFC 5802 / RFC 7677, without channel binding. */
class ScramSha256Exchange implements SaslServerExchange {
  readonly mechanism = "SCRAM-SHA-256";
  #opts: SaslServerOptions;
  #state:
    | { kind: "new" }
    | { kind: "waitingFirst" }
    | { kind: "waitingFinal"; session: ScramServerSession; isKnown: boolean }
    | { kind: "done" } = { kind: "new" };

  constructor(opts: SaslServerOptions) {
    this.#opts = opts;
  }

  async start(initialResponse: Uint8Array | undefined): Promise<SaslStep> {
    // The HMACs of #first (dummy verifiers) and of checkClientFinal are node:crypto's.
    await loadNodeCrypto();
    if (this.#state.kind !== "new") return this.#fail();
    if (initialResponse === undefined) {
      this.#state = { kind: "waitingFirst" };
      return { kind: "challenge", data: new Uint8Array(0) };
    }
    return this.#first(initialResponse);
  }

  async next(response: Uint8Array): Promise<SaslStep> {
    await loadNodeCrypto();
    const state = this.#state;
    if (state.kind === "waitingFirst") return Promise.resolve(this.#first(response));
    if (state.kind !== "waitingFinal") return this.#fail();
    this.#state = { kind: "done" };
    const text = decodeUtf8(response);
    if (text === undefined) return Promise.resolve(MALFORMED);
    const final = parseClientFinal(text);
    if (!final.ok) return Promise.resolve(MALFORMED);
    const user = state.session.clientFirst.user;
    const result = checkClientFinal(state.session, final.value);
    if (!result.ok) {
      return Promise.resolve(
        result.reason === "malformed"
          ? MALFORMED
          : { kind: "failure", reason: "credentials", user },
      );
    }
    if (!state.isKnown) return Promise.resolve({ kind: "failure", reason: "credentials", user });
    return Promise.resolve({ kind: "success", user, data: utf8(result.serverFinal) });
  }

  #first(message: Uint8Array): SaslStep {
    this.#state = { kind: "done" };
    const text = decodeUtf8(message);
    if (text === undefined) return MALFORMED;
    const parsed = parseClientFirst(text);
    if (!parsed.ok) {
      return parsed.reason === "channel binding not supported"
        ? { kind: "failure", reason: "unsupported" }
        : MALFORMED;
    }
    const first: ClientFirst = parsed.value;
    // The bound of PLAIN and LOGIN, after SASLprep (NFKC may grow a name 18-fold): the name
    // becomes a throttle key and a log field.
    if (utf8(first.user).length > MAX_FIELD_OCTETS) return MALFORMED;
    // The authorization identity too, as PLAIN's (not SASLprep'd: it cannot grow past what came).
    if (first.authzid !== undefined && utf8(first.authzid).length > MAX_FIELD_OCTETS) {
      return MALFORMED;
    }
    if (first.authzid !== undefined && first.authzid !== first.user) {
      return { kind: "failure", reason: "credentials", user: first.user };
    }
    const stored = this.#opts.store.getVerifiers(first.user)?.scramSha256;
    const verifier = stored ??
      dummyScramVerifier(first.user, this.#opts.fakeSaltKey ?? PROCESS_FAKE_SALT_KEY);
    const fullNonce = first.clientNonce + makeScramNonce(randomSource(this.#opts));
    const serverFirst = buildServerFirst(fullNonce, verifier);
    this.#state = {
      kind: "waitingFinal",
      session: { clientFirst: first, serverFirst, fullNonce, verifier },
      isKnown: stored !== undefined,
    };
    return { kind: "challenge", data: utf8(serverFirst) };
  }

  #fail(): Promise<SaslStep> {
    this.#state = { kind: "done" };
    return Promise.resolve(MALFORMED);
  }
}
