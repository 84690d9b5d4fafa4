/**
 * Client side of the SASL mechanisms, for our customer (`fetch`): the answers to the
 * provider's challenges, and SCRAM's check of the server signature (the client MUST verify
 * `v=` before trusting the server). Framing (`AUTH`, 334, base64) is the caller's job.
 */
import { decodeUtf8, utf8 } from "./_bytes.ts";
import { cramResponse } from "./cram_md5.ts";
import type { SaslMechanismName } from "./sasl_server.ts";
import { checkServerFinal, computeClientFinal } from "./scram_client.ts";
import { escapeScramName, makeScramNonce } from "./_scram_common.ts";

/** The server broke the mechanism (bad nonce, wrong signature, unexpected step). */
export class SaslClientError extends Error {
  override readonly name = "SaslClientError";
}

/** One client exchange. */
export interface SaslClient {
  readonly mechanism: SaslMechanismName;
  /** What to send with `AUTH <mech>`, or undefined to send none. */
  initialResponse(): Uint8Array | undefined;
  /** The answer to one `334` challenge (decoded). Throws SaslClientError. */
  next(challenge: Uint8Array): Promise<Uint8Array>;
  /**
   * Call on `235`. For SCRAM, throws SaslClientError unless the server signature was verified
   * (from a `334 v=…` already answered, or from `data` when given).
   */
  verifyFinal(data?: Uint8Array): void;
}

/** Credentials and test hooks. */
export interface SaslClientOptions {
  readonly user: string;
  readonly password: string;
  readonly random?: (n: number) => Uint8Array;
}

const PREFERENCE: readonly SaslMechanismName[] = ["SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"];

/**
 * The best mechanism the server offers: SCRAM-SHA-256 > CRAM-MD5 > PLAIN > LOGIN; PLAIN and
 * LOGIN only when the connection is secure (they send the password in clear).
 */
export function chooseMechanism(
  offered: readonly string[],
  isSecure: boolean,
): SaslMechanismName | undefined {
  const upper = new Set(offered.map((m) => m.toUpperCase()));
  return PREFERENCE.find((m) => upper.has(m) && (isSecure || (m !== "PLAIN" && m !== "LOGIN")));
}

/** Creates the client for `mech`. */
export function createSaslClient(mech: SaslMechanismName, opts: SaslClientOptions): SaslClient {
  switch (mech) {
    case "SCRAM-SHA-256":
      return new ScramClient(opts);
    case "CRAM-MD5":
      return new CramClient(opts);
    case "PLAIN":
      return new PlainClient(opts);
    case "LOGIN":
      return new LoginClient(opts);
    default: {
      const never: never = mech;
      throw new Error(`unknown SASL mechanism ${String(never)}`);
    }
  }
}

class CramClient implements SaslClient {
  readonly mechanism = "CRAM-MD5";
  #opts: SaslClientOptions;
  #isAnswered = false;

  constructor(opts: SaslClientOptions) {
    this.#opts = opts;
  }

  initialResponse(): undefined {
    return undefined;
  }

  next(challenge: Uint8Array): Promise<Uint8Array> {
    if (this.#isAnswered) return Promise.reject(new SaslClientError("Unexpected second challenge"));
    this.#isAnswered = true;
    return Promise.resolve(cramResponse(this.#opts.user, this.#opts.password, challenge));
  }

  verifyFinal(): void {}
}

class PlainClient implements SaslClient {
  readonly mechanism = "PLAIN";
  #message: Uint8Array;
  #isAnswered = false;

  constructor(opts: SaslClientOptions) {
    this.#message = utf8(`\0${opts.user}\0${opts.password}`);
  }

  initialResponse(): Uint8Array {
    this.#isAnswered = true;
    return this.#message;
  }

  next(challenge: Uint8Array): Promise<Uint8Array> {
    // An empty 334 is the server asking for the message (no initial response was sent).
    if (challenge.length !== 0 || this.#isAnswered) {
      return Promise.reject(new SaslClientError("Unexpected PLAIN challenge"));
    }
    this.#isAnswered = true;
    return Promise.resolve(this.#message);
  }

  verifyFinal(): void {}
}

class LoginClient implements SaslClient {
  readonly mechanism = "LOGIN";
  #opts: SaslClientOptions;
  #step = 0;

  constructor(opts: SaslClientOptions) {
    this.#opts = opts;
  }

  initialResponse(): undefined {
    return undefined;
  }

  next(_challenge: Uint8Array): Promise<Uint8Array> {
    // Clients ignore the prompt text (docs/protocol.md §3.3); the order is user, then password.
    this.#step++;
    if (this.#step === 1) return Promise.resolve(utf8(this.#opts.user));
    if (this.#step === 2) return Promise.resolve(utf8(this.#opts.password));
    return Promise.reject(new SaslClientError("Unexpected third LOGIN challenge"));
  }

  verifyFinal(): void {}
}

class ScramClient implements SaslClient {
  readonly mechanism = "SCRAM-SHA-256";
  #opts: SaslClientOptions;
  #gs2Header = "n,,";
  #clientNonce: string;
  #clientFirstBare: string;
  #state:
    | { kind: "new" }
    | { kind: "sentFirst" }
    | { kind: "sentFinal"; expected: Uint8Array }
    | { kind: "verified" }
    | { kind: "failed" } = { kind: "new" };

  constructor(opts: SaslClientOptions) {
    this.#opts = opts;
    this.#clientNonce = makeScramNonce(opts.random);
    this.#clientFirstBare = `n=${escapeScramName(opts.user)},r=${this.#clientNonce}`;
  }

  initialResponse(): Uint8Array {
    this.#state = { kind: "sentFirst" };
    return utf8(this.#gs2Header + this.#clientFirstBare);
  }

  async next(challenge: Uint8Array): Promise<Uint8Array> {
    const state = this.#state;
    const text = decodeUtf8(challenge);
    if (text === undefined) return this.#fail("Server sent a SCRAM message that is not UTF-8");
    switch (state.kind) {
      case "new":
        // The server asked for client-first with an empty 334 (no initial response sent).
        if (text !== "") return this.#fail("Unexpected SCRAM challenge before client-first");
        return this.initialResponse();
      case "sentFirst": {
        const result = await computeClientFinal({
          password: this.#opts.password,
          clientFirstBare: this.#clientFirstBare,
          gs2Header: this.#gs2Header,
          clientNonce: this.#clientNonce,
          serverFirst: text,
        });
        if (!result.ok) return this.#fail(`Bad SCRAM server-first: ${result.reason}`);
        this.#state = { kind: "sentFinal", expected: result.value.expectedServerSignature };
        return utf8(result.value.clientFinal);
      }
      case "sentFinal":
        this.#verify(text, state.expected);
        return new Uint8Array(0);
      case "verified":
      case "failed":
        return this.#fail("Unexpected SCRAM challenge after server-final");
      default: {
        const never: never = state;
        throw new Error(`bad state ${String(never)}`);
      }
    }
  }

  verifyFinal(data?: Uint8Array): void {
    const state = this.#state;
    if (data !== undefined && state.kind === "sentFinal") {
      this.#verify(decodeUtf8(data) ?? "", state.expected);
    }
    if (this.#state.kind !== "verified") {
      this.#state = { kind: "failed" };
      throw new SaslClientError("Server did not prove it knows the SCRAM verifier (no v=)");
    }
  }

  #verify(text: string, expected: Uint8Array): void {
    const result = checkServerFinal(text, expected);
    if (!result.ok) {
      this.#state = { kind: "failed" };
      throw new SaslClientError(`SCRAM server-final refused: ${result.reason}`);
    }
    this.#state = { kind: "verified" };
  }

  #fail(message: string): never {
    this.#state = { kind: "failed" };
    throw new SaslClientError(message);
  }
}
