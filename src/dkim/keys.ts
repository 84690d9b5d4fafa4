/**
 * DKIM signing keys: the `DkimKeys` interface every key store offers, and the store on disk:
 * `data_dir/dkim/DOMAIN/SELECTOR.pem`, PKCS#8 PEM, file mode 0600 in directories of mode 0700
 * (with PostgreSQL the keys are in the shared database instead: src/dkim/pg_keys.ts). A key is written under a temporary name and linked into place, so a
 * reader never sees half a key and an existing key is never overwritten. Also formats the DNS
 * TXT record that publishes a key's public half (RFC 6376 §3.6.1, RFC 8463 §4).
 */
import { NamedFileError, readNamedTextFile } from "../named_file.ts";
import type crypto from "node:crypto";
import * as path from "../posix_path.ts";
import { normalizeDomain } from "../auth/domain.ts";
import { loadNodeCrypto, nodeCrypto } from "../auth/node_crypto.ts";
import type { DkimAlgorithm, DkimKey } from "./signer.ts";

/** `keygen --algorithm`: the key type. */
export type KeyType = "rsa" | "ed25519";

/** RSA modulus size: RFC 8301 §3.2 requires at least 1024 and recommends 2048. */
export const RSA_BITS = 2048;
/** Longest string in one TXT character-string (RFC 1035 §3.3). */
const TXT_STRING_BYTES = 255;
const SELECTOR_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** One stored key as `dkim list` shows it. */
export interface KeyEntry {
  readonly domain: string;
  readonly selector: string;
  readonly type: KeyType;
  /** When the key file was written. */
  readonly createdAt: Date;
  /** Owner name of the TXT record: `SELECTOR._domainkey.DOMAIN`. */
  readonly dnsName: string;
  /** The TXT record's text (`v=DKIM1; k=…; p=…`), before splitting into strings. */
  readonly dnsText: string;
}

/** A refusal the CLI prints as is (bad name, key exists, key missing). */
export class KeyStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyStoreError";
  }
}

/** The selector in canonical (lower-case) form, or undefined when it is not a DNS name. */
export function normalizeSelector(input: string): string | undefined {
  const s = input.trim().toLowerCase();
  if (s === "" || s.length > 200) return undefined;
  return s.split(".").every((label) => SELECTOR_LABEL.test(label)) ? s : undefined;
}

/** The default selector of a new key: its type and today's date (`ed25519-20261128`). */
export function defaultSelector(type: KeyType, now: Date): string {
  return `${type}-${now.toISOString().slice(0, 10).replaceAll("-", "")}`;
}

/**
 * Where the signing keys live. A key is never overwritten: `generate` refuses an existing
 * (domain, selector). `keysFor` reads the store each time, so a key added while `serve` runs
 * signs the next message.
 */
export interface DkimKeys {
  /** Generates and stores a key; throws KeyStoreError when one exists already. */
  generate(domain: string, selector: string, type: KeyType): Promise<KeyEntry>;
  /** Every stored key, sorted by domain, then selector. */
  list(): Promise<KeyEntry[]>;
  /** Deletes one key; false when there was none. */
  remove(domain: string, selector: string): Promise<boolean>;
  /** The keys that sign mail from `domain`, sorted by selector. */
  keysFor(domain: string): Promise<DkimKey[]>;
}

/** The keys under one data directory. */
export class DkimKeyStore implements DkimKeys {
  readonly #root: string;

  constructor(dataDir: string) {
    this.#root = path.join(dataDir, "dkim");
  }

  /** Generates and stores a key; refuses to replace an existing one. */
  async generate(domainInput: string, selectorInput: string, type: KeyType): Promise<KeyEntry> {
    const { domain, selector } = checkNames(domainInput, selectorInput);
    const pem = await generatePem(type);
    const dir = path.join(this.#root, domain);
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.chmod(this.#root, 0o700);
    await Deno.chmod(dir, 0o700);
    const final = path.join(dir, `${selector}.pem`);
    const temp = path.join(dir, `.${selector}.${globalThis.crypto.randomUUID()}.tmp`);
    const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
    try {
      await file.write(new TextEncoder().encode(pem));
      await file.syncData();
    } finally {
      file.close();
    }
    try {
      await Deno.link(temp, final);
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) {
        throw new KeyStoreError(`A key for "${domain}" with selector "${selector}" already exists`);
      }
      throw err;
    } finally {
      await Deno.remove(temp);
    }
    const entry = await this.#entry(domain, selector);
    if (entry === undefined) throw new Error(`key ${final} vanished after it was written`);
    return entry;
  }

  /** Every stored key, sorted by domain, then selector. */
  async list(): Promise<KeyEntry[]> {
    const entries: KeyEntry[] = [];
    for (const domain of await this.#names(this.#root, true)) {
      for (const file of await this.#names(path.join(this.#root, domain), false)) {
        const entry = await this.#entry(domain, file.slice(0, -".pem".length));
        if (entry !== undefined) entries.push(entry);
      }
    }
    return entries.sort((a, b) =>
      a.domain === b.domain ? cmp(a.selector, b.selector) : cmp(a.domain, b.domain)
    );
  }

  /** Deletes one key; false when there was none. */
  async remove(domainInput: string, selectorInput: string): Promise<boolean> {
    const { domain, selector } = checkNames(domainInput, selectorInput);
    try {
      await Deno.remove(path.join(this.#root, domain, `${selector}.pem`));
      return true;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
  }

  /** The keys that sign mail from `domain` (every selector: both sign during a rotation). */
  async keysFor(domainInput: string): Promise<DkimKey[]> {
    const domain = normalizeDomain(domainInput);
    if (domain === undefined) return [];
    const keys: DkimKey[] = [];
    for (const file of await this.#names(path.join(this.#root, domain), false)) {
      const selector = file.slice(0, -".pem".length);
      const privateKey = await this.#privateKey(domain, selector);
      if (privateKey === undefined) continue;
      keys.push(signingKey(domain, selector, privateKey));
    }
    return keys;
  }

  async #names(dir: string, isDir: boolean): Promise<string[]> {
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        if (isDir ? e.isDirectory && normalizeDomain(e.name) === e.name : isKeyFile(e)) {
          names.push(e.name);
        }
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
    return names.sort(cmp);
  }

  async #privateKey(domain: string, selector: string): Promise<crypto.KeyObject | undefined> {
    let pem: string;
    const file = path.join(this.#root, domain, `${selector}.pem`);
    try {
      pem = await readNamedTextFile(file);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      if (err instanceof NamedFileError) {
        throw new KeyStoreError(`Cannot read the DKIM key "${file}": ${err.message}`);
      }
      throw err;
    }
    await loadNodeCrypto();
    return parsePrivateKey(domain, selector, pem);
  }

  async #entry(domain: string, selector: string): Promise<KeyEntry | undefined> {
    const key = await this.#privateKey(domain, selector);
    if (key === undefined) return undefined;
    const info = await Deno.stat(path.join(this.#root, domain, `${selector}.pem`));
    return {
      domain,
      selector,
      ...describeKey(key),
      createdAt: info.mtime ?? new Date(0),
      dnsName: `${selector}._domainkey.${domain}`,
    };
  }
}

/**
 * A stored PEM as a key object; throws KeyStoreError for a type DKIM cannot use. After
 * `loadNodeCrypto()`, as describeKey and dnsText.
 */
export function parsePrivateKey(domain: string, selector: string, pem: string): crypto.KeyObject {
  const key = nodeCrypto().createPrivateKey(pem);
  const type = key.asymmetricKeyType;
  if (type !== "rsa" && type !== "ed25519") {
    throw new KeyStoreError(`Key "${domain}/${selector}" is of unsupported type "${type}"`);
  }
  return key;
}

/** The type and TXT text of a parsed key (for a `KeyEntry`). */
export function describeKey(key: crypto.KeyObject): { type: KeyType; dnsText: string } {
  return { type: key.asymmetricKeyType === "rsa" ? "rsa" : "ed25519", dnsText: dnsText(key) };
}

/** The signing key of a parsed stored key. */
export function signingKey(domain: string, selector: string, key: crypto.KeyObject): DkimKey {
  return { domain, selector, algorithm: algorithmOf(key), privateKey: key };
}

/** A new private key as PKCS#8 PEM (generated off the event loop: RSA takes ~0.3 s). */
export async function generatePem(type: KeyType): Promise<string> {
  const { generateKeyPair } = await loadNodeCrypto();
  const encoding = { privateKeyEncoding: { type: "pkcs8", format: "pem" } } as const;
  return await new Promise((resolve, reject) => {
    const done = (err: Error | null, _pub: unknown, priv: string) =>
      err === null ? resolve(priv) : reject(err);
    if (type === "rsa") {
      generateKeyPair("rsa", {
        modulusLength: RSA_BITS,
        publicKeyEncoding: { type: "spki", format: "pem" },
        ...encoding,
      }, done);
    } else {
      generateKeyPair("ed25519", {
        publicKeyEncoding: { type: "spki", format: "pem" },
        ...encoding,
      }, done);
    }
  });
}

function isKeyFile(e: Deno.DirEntry): boolean {
  return e.isFile && e.name.endsWith(".pem") &&
    normalizeSelector(e.name.slice(0, -4)) === e.name.slice(0, -4);
}

/** The canonical domain and selector; throws KeyStoreError naming the bad one. */
export function checkNames(domainInput: string, selectorInput: string) {
  const domain = normalizeDomain(domainInput);
  if (domain === undefined) {
    throw new KeyStoreError(
      `Invalid domain "${domainInput}": expected a DNS name like example.org`,
    );
  }
  const selector = normalizeSelector(selectorInput);
  if (selector === undefined) {
    throw new KeyStoreError(
      `Invalid selector "${selectorInput}": expected DNS labels (letters, digits, hyphens)`,
    );
  }
  return { domain, selector };
}

function algorithmOf(key: crypto.KeyObject): DkimAlgorithm {
  return key.asymmetricKeyType === "rsa" ? "rsa-sha256" : "ed25519-sha256";
}

/**
 * The TXT text publishing the public half: RSA as DER SubjectPublicKeyInfo (RFC 6376 §3.6.1),
 * Ed25519 as the bare 32-byte key (RFC 8463 §4.2).
 */
export function dnsText(privateKey: crypto.KeyObject): string {
  const pub = nodeCrypto().createPublicKey(privateKey);
  const der = pub.export({ type: "spki", format: "der" });
  if (privateKey.asymmetricKeyType === "rsa") {
    return `v=DKIM1; k=rsa; p=${der.toString("base64")}`;
  }
  // An Ed25519 SubjectPublicKeyInfo is a fixed 12-byte prefix and the 32-byte key.
  return `v=DKIM1; k=ed25519; p=${der.subarray(der.length - 32).toString("base64")}`;
}

/** The TXT text cut into character-strings of at most 255 bytes (RFC 1035 §3.3). */
export function txtStrings(text: string): string[] {
  const out: string[] = [];
  for (let at = 0; at < text.length; at += TXT_STRING_BYTES) {
    out.push(text.slice(at, at + TXT_STRING_BYTES));
  }
  return out;
}

/** A zone-file line for the record (BIND syntax; quoted strings side by side). */
export function zoneLine(entry: KeyEntry): string {
  const strings = txtStrings(entry.dnsText).map((s) => `"${s}"`).join(" ");
  return `${entry.dnsName}. IN TXT ( ${strings} )`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
