/**
 * The server's certificate and key: parsed and matched before use (a broken pair is an error
 * naming the config key and the file, not a handshake failure later), checked for expiry and host name, and held
 * in a reloadable slot so a renewal (SIGHUP, or the files changing) reaches new handshakes
 * while open sessions keep the context they started with. A bad new pair never replaces a
 * good one.
 */
import { NamedFileError, readNamedFileSync } from "../named_file.ts";
import tls from "node:tls";
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { Buffer } from "node:buffer";
import { errorText } from "../errors.ts";

/** Warn when the certificate expires within this many days. */
export const EXPIRY_WARNING_DAYS = 14;

/**
 * Raised when the certificate or key cannot be used; `file` is the one at fault, `keyPath` the
 * config key that names it. The message starts with both: `tls.cert "/etc/…/cert.pem" …`.
 */
export class CertificateError extends Error {
  readonly file: string;
  readonly keyPath: "tls.cert" | "tls.key";
  constructor(keyPath: "tls.cert" | "tls.key", file: string, detail: string) {
    super(`${keyPath} "${file}" ${detail}`);
    this.name = "CertificateError";
    this.file = file;
    this.keyPath = keyPath;
  }
}

/** A parsed, matching certificate and key, ready for handshakes. */
export interface CertificatePair {
  readonly context: tls.SecureContext;
  /** Expiry of the leaf certificate. */
  readonly notAfter: Date;
  readonly subject: string;
  /** Fingerprint of the files' content, to tell a changed pair from the same one. */
  readonly digest: string;
  readonly leaf: X509Certificate;
}

/**
 * Reads and checks `certFile` (PEM chain, leaf first) and `keyFile` (PEM private key).
 * Throws CertificateError naming the config key and the file: unreadable, not PEM, not parseable, or a key that
 * does not belong to the certificate.
 */
export function loadCertificatePair(certFile: string, keyFile: string): CertificatePair {
  const certBytes = readFile(certFile, "tls.cert");
  const keyBytes = readFile(keyFile, "tls.key");
  const certText = new TextDecoder().decode(certBytes);
  const pems = certText.match(
    /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g,
  );
  if (pems === null) {
    throw new CertificateError("tls.cert", certFile, "holds no PEM certificate");
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(pems[0] as string);
    for (const pem of pems.slice(1)) new X509Certificate(pem);
  } catch (err) {
    throw new CertificateError(
      "tls.cert",
      certFile,
      `is not a valid certificate: ${errorText(err)}`,
    );
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(Buffer.from(keyBytes));
  } catch (err) {
    throw new CertificateError(
      "tls.key",
      keyFile,
      `is not a valid PEM private key: ${errorText(err)}`,
    );
  }
  let isMatch = false;
  try {
    isMatch = leaf.checkPrivateKey(key);
  } catch {
    isMatch = false;
  }
  if (!isMatch) {
    throw new CertificateError(
      "tls.key",
      keyFile,
      `does not belong to the certificate of tls.cert "${certFile}"`,
    );
  }
  let context: tls.SecureContext;
  try {
    context = tls.createSecureContext({ cert: Buffer.from(certBytes), key: Buffer.from(keyBytes) });
  } catch (err) {
    throw new CertificateError(
      "tls.cert",
      certFile,
      `and tls.key "${keyFile}" make no TLS context: ${errorText(err)}`,
    );
  }
  const digest = createHash("sha256").update(certBytes).update(keyBytes).digest("hex");
  return { context, notAfter: new Date(leaf.validTo), subject: leaf.subject, digest, leaf };
}

/** What an operator should hear about a pair that loads (expiring soon, wrong name). */
export function certificateWarnings(
  pair: CertificatePair,
  opts: { hostname: string; certFile: string; now?: Date },
): string[] {
  const now = opts.now ?? new Date();
  const out: string[] = [];
  const daysLeft = (pair.notAfter.getTime() - now.getTime()) / 86_400_000;
  if (daysLeft < 0) {
    out.push(
      `TLS certificate "${opts.certFile}" expired on ${pair.notAfter.toISOString()}: renew it`,
    );
  } else if (daysLeft < EXPIRY_WARNING_DAYS) {
    out.push(
      `TLS certificate "${opts.certFile}" expires in ${Math.floor(daysLeft)} days ` +
        `(${pair.notAfter.toISOString()}): renew it`,
    );
  }
  if (pair.leaf.checkHost(opts.hostname) === undefined) {
    out.push(
      `TLS certificate "${opts.certFile}" does not name hostname "${opts.hostname}" ` +
        `(subject ${
          pair.subject.replaceAll("\n", ", ")
        }): clients checking the name will refuse it`,
    );
  }
  return out;
}

/** What a reload did. */
export type ReloadResult =
  | { readonly kind: "reloaded"; readonly pair: CertificatePair }
  | { readonly kind: "unchanged" }
  | { readonly kind: "failed"; readonly error: CertificateError };

/** The current certificate pair of a server; replaced only by a pair that loads. */
export class ReloadableTlsContext {
  readonly certFile: string;
  readonly keyFile: string;
  #pair: CertificatePair;
  #stamp: string;
  /** Stamp of files that failed to load: not retried (nor logged again) until they change. */
  #failedStamp: string | undefined;

  /** Loads the pair now (throws CertificateError like loadCertificatePair). */
  constructor(certFile: string, keyFile: string) {
    this.certFile = certFile;
    this.keyFile = keyFile;
    this.#stamp = fileStamp(certFile, keyFile);
    this.#pair = loadCertificatePair(certFile, keyFile);
  }

  /** The context new handshakes use. */
  get current(): tls.SecureContext {
    return this.#pair.context;
  }

  get pair(): CertificatePair {
    return this.#pair;
  }

  /** Re-reads both files; keeps the old pair when the new one does not load. */
  reload(): ReloadResult {
    const stamp = fileStamp(this.certFile, this.keyFile);
    let pair: CertificatePair;
    try {
      pair = loadCertificatePair(this.certFile, this.keyFile);
    } catch (err) {
      if (err instanceof CertificateError) {
        this.#failedStamp = stamp;
        return { kind: "failed", error: err };
      }
      throw err;
    }
    this.#stamp = stamp;
    this.#failedStamp = undefined;
    if (pair.digest === this.#pair.digest) return { kind: "unchanged" };
    this.#pair = pair;
    return { kind: "reloaded", pair };
  }

  /** Reloads when either file's size, mtime or inode changed since the last load. */
  reloadIfChanged(): ReloadResult {
    const stamp = fileStamp(this.certFile, this.keyFile);
    if (stamp === this.#stamp || stamp === this.#failedStamp) return { kind: "unchanged" };
    return this.reload();
  }
}

/** Size, mtime and inode of both files ("" for one that cannot be read). */
function fileStamp(certFile: string, keyFile: string): string {
  return [certFile, keyFile].map((f) => {
    try {
      // Follows symlinks: certbot's live/ files are links into archive/.
      const s = Deno.statSync(f);
      return `${s.size}:${s.mtime?.getTime() ?? 0}:${s.ino ?? 0}`;
    } catch {
      return "";
    }
  }).join("|");
}

function readFile(file: string, keyPath: "tls.cert" | "tls.key"): Uint8Array {
  try {
    return readNamedFileSync(file);
  } catch (err) {
    if (err instanceof NamedFileError) {
      throw new CertificateError(keyPath, file, `is ${err.message}`);
    }
    throw new CertificateError(keyPath, file, `cannot be read: ${errorText(err)}`);
  }
}

/** Loads a certificate chain and key (PEM files) into a reusable TLS context. */
export function loadSecureContext(certFile: string, keyFile: string): tls.SecureContext {
  const cert = readNamedFileSync(certFile);
  const key = readNamedFileSync(keyFile);
  return tls.createSecureContext({ cert: Buffer.from(cert), key: Buffer.from(key) });
}
