/**
 * Client certificates pinned per user for AUTH EXTERNAL (RFC 4422 appendix A over TLS): the
 * SHA-256 fingerprint of each certificate a user may log in with, like SSH keys. No CA
 * hierarchy; a fingerprint is pinned for at most one user. Same database as the users; a
 * removed user's pins go with it (foreign key).
 */
import type { DatabaseSync } from "node:sqlite";
import type { X509Certificate } from "node:crypto";
import { nodeCrypto } from "./node_crypto.ts";
import { applyMigrations, inImmediateTransaction } from "../queue/db.ts";
import { errorText } from "../errors.ts";

/** A refusal written for people (CLI), like the store's UserError. */
export class PinError extends Error {
  override readonly name = "PinError";
}

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE user_certs (
     fingerprint TEXT PRIMARY KEY NOT NULL,
     "user" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE
   );
   CREATE INDEX user_certs_by_user ON user_certs("user");`,
];

/** `AB:CD:…` (32 upper-case hex pairs) from hex with or without colons; undefined if not. */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.trim().replace(/:/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  return hex.match(/../g)?.join(":");
}

/**
 * The SHA-256 fingerprint of the first certificate in a PEM text; throws PinError if none.
 * After `loadNodeCrypto()`.
 */
export function fingerprintOfPem(pem: string, file: string): string {
  // A private key or an empty file given by mistake: the parser would only say "nom error: Eof".
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new PinError(
      `"${file}" holds no PEM certificate (no -----BEGIN CERTIFICATE----- line): give the ` +
        "client's certificate, not its key",
    );
  }
  let cert: X509Certificate;
  try {
    cert = new (nodeCrypto().X509Certificate)(pem);
  } catch (err) {
    throw new PinError(`Cannot read the certificate in "${file}" (${errorText(err)})`);
  }
  const fp = normalizeFingerprint(cert.fingerprint256);
  if (fp === undefined) throw new PinError(`Cannot fingerprint the certificate in "${file}"`);
  return fp;
}

/** Pinned fingerprints over the shared SQLite database (component "auth_certs"). */
export class CertificatePins {
  readonly #db: DatabaseSync;

  /** Wraps an open database whose "auth" migrations ran (the users table). */
  constructor(db: DatabaseSync) {
    this.#db = db;
    applyMigrations(db, "auth_certs", MIGRATIONS);
  }

  /** The user `fingerprint` is pinned for, if any. */
  userOf(fingerprint: string): string | undefined {
    const fp = normalizeFingerprint(fingerprint);
    if (fp === undefined) return undefined;
    const row = this.#db.prepare('SELECT "user" FROM user_certs WHERE fingerprint = ?').get(fp);
    const user = row?.user;
    return typeof user === "string" ? user : undefined;
  }

  /** The fingerprints pinned for `user`, sorted. */
  fingerprintsOf(user: string): string[] {
    return this.#db.prepare('SELECT fingerprint FROM user_certs WHERE "user" = ? ORDER BY 1')
      .all(user).map((r) => String(r.fingerprint));
  }

  /** Pins `fingerprint` for `user`; refused when the user is unknown or another holds it. */
  pin(user: string, fingerprint: string): void {
    this.change(user, { pin: fingerprint });
  }

  /** Unpins `fingerprint` from `user`; refused when it is not pinned for that user. */
  unpin(user: string, fingerprint: string): void {
    this.change(user, { unpin: fingerprint });
  }

  /**
   * Pins `pin` for `user`, then unpins `unpin` from it, in one transaction: a refused part
   * changes nothing (`user certs NAME --add FILE --remove FINGERPRINT`).
   */
  change(user: string, what: { pin?: string; unpin?: string }): void {
    const toPin = what.pin === undefined ? undefined : fingerprintOrThrow(what.pin);
    const toUnpin = what.unpin === undefined ? undefined : fingerprintOrThrow(what.unpin);
    inImmediateTransaction(this.#db, () => {
      if (toPin !== undefined) {
        const exists = this.#db.prepare("SELECT 1 AS one FROM users WHERE name = ?").get(user);
        if (exists === undefined) throw new PinError(`User "${user}" does not exist`);
        const holder = this.userOf(toPin);
        if (holder !== undefined && holder !== user) {
          throw new PinError(`Certificate ${toPin} is already pinned for user "${holder}"`);
        }
        this.#db.prepare('INSERT OR IGNORE INTO user_certs (fingerprint, "user") VALUES (?, ?)')
          .run(toPin, user);
      }
      if (toUnpin !== undefined) {
        const done = this.#db.prepare(
          'DELETE FROM user_certs WHERE fingerprint = ? AND "user" = ?',
        ).run(toUnpin, user);
        if (Number(done.changes) === 0) {
          throw new PinError(`Certificate ${toUnpin} is not pinned for user "${user}"`);
        }
      }
    });
  }
}

function fingerprintOrThrow(text: string): string {
  const fp = normalizeFingerprint(text);
  if (fp === undefined) throw new PinError(`"${text}" is not a SHA-256 fingerprint`);
  return fp;
}
