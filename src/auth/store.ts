/**
 * Credential storage: users, their verifiers (SCRAM-SHA-256 keys, `{CRAM-MD5}` midstates,
 * scrypt hash; never the password) and the domains each owns (a domain has at most one owner).
 * Every read goes to the database, so a running `serve` sees `user …` changes at once.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  applyMigrations,
  inImmediateTransaction,
  noteUsersChanged,
  openDatabase,
} from "../queue/db.ts";
import { cramContextFromPassword, formatCramVerifier, parseCramVerifier } from "./cram_md5.ts";
import type { CramContext } from "./cram_md5.ts";
import { normalizeDomain } from "./domain.ts";
import { DomainOwners } from "./_domain_owners.ts";
import { CertificatePins } from "./cert_pins.ts";
import { hashPassword, type ScryptParams } from "./password_hash.ts";
import {
  deriveScramVerifier,
  formatScramVerifier,
  parseScramVerifier,
  saslPrep,
  type ScramVerifier,
} from "./scram.ts";

/** A refusal written for people (CLI): the message says what is wrong and with which value. */
export class UserError extends Error {
  override readonly name = "UserError";
}

/** A user and the domains it owns (sorted). */
export interface UserEntry {
  readonly name: string;
  readonly domains: readonly string[];
}

/** What the SASL server needs for one user; a verifier is undefined when absent or unreadable. */
export interface StoredVerifiers {
  readonly scramSha256: ScramVerifier | undefined;
  readonly cramMd5: CramContext | undefined;
  readonly passwordHash: string | undefined;
}

/** Cost knobs, mainly so tests run fast. */
export interface CredentialStoreOptions {
  readonly scramIterations?: number;
  readonly scryptParams?: ScryptParams;
}

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE users (
     name TEXT PRIMARY KEY NOT NULL,
     created_at TEXT NOT NULL,
     scram_sha256 TEXT,
     cram_md5 TEXT,
     password_hash TEXT
   );
   CREATE TABLE user_domains (
     domain TEXT PRIMARY KEY NOT NULL,
     "user" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE
   );
   CREATE INDEX user_domains_by_user ON user_domains("user");`,
];

const USER_NAME_RE = /^[A-Za-z0-9._@+-]{1,64}$/;
/** The longest password AUTH PLAIN and LOGIN take (sasl_server.ts `MAX_FIELD_OCTETS`). */
export const MAX_PASSWORD_OCTETS = 255;

/** True when `name` is 1–64 characters of `[A-Za-z0-9._@+-]`. */
export function isValidUserName(name: string): boolean {
  return USER_NAME_RE.test(name);
}

/** Users, verifiers and domain ownership over the shared SQLite database (component "auth"). */
export class CredentialStore {
  readonly #db: DatabaseSync;
  #ownsDb = false;
  readonly #opts: CredentialStoreOptions;
  readonly #statements = new Map<string, StatementSync>();
  readonly #owners: DomainOwners;

  /** Wraps an open database (applying the "auth" migrations); the caller keeps ownership. */
  constructor(db: DatabaseSync, opts: CredentialStoreOptions = {}) {
    this.#db = db;
    this.#opts = opts;
    applyMigrations(db, "auth", MIGRATIONS);
    this.certificates = new CertificatePins(db);
    this.#owners = new DomainOwners(db, (d) => this.#ownerOfNormalized(d));
  }

  /** Client certificates pinned per user for AUTH EXTERNAL. */
  readonly certificates: CertificatePins;

  /**
   * Opens `dataDir/odmr.db` for this store alone (through `open`: a tool's opens may use serve's
   * space reserve, src/cli/_backend.ts); `close()` closes it.
   */
  static open(
    dataDir: string,
    opts: CredentialStoreOptions = {},
    open: (dataDir: string) => DatabaseSync = openDatabase,
  ): CredentialStore {
    const db = open(dataDir);
    try {
      const store = new CredentialStore(db, opts);
      store.#ownsDb = true;
      return store;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * One compiled statement per SQL text, kept for the store's life. Preparing on each call
   * (every RCPT looks up the owner) left a native statement per call until V8 collected its
   * wrapper, which V8 does not count: about 1.3 KB of resident memory each, 100+ MB over a
   * 50k-message ingest (#13).
   */
  #prepare(sql: string): StatementSync {
    let stmt = this.#statements.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  /** Runs `fn` in a transaction that may change who owns which domain (see DomainOwners). */
  #changeOwners(fn: () => void): void {
    try {
      inImmediateTransaction(this.#db, fn);
    } finally {
      noteUsersChanged(this.#db);
    }
  }

  /** Closes the database if this store opened it. */
  close(): void {
    if (this.#ownsDb) this.#db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Creates `name` with `password` owning `domains`. Throws UserError when refused. */
  async addUser(name: string, password: string, domains: readonly string[]): Promise<void> {
    checkUserName(name);
    const normalized = normalizeDomains(domains);
    const columns = await this.#verifierColumns(password);
    this.#changeOwners(() => {
      if (this.#exists(name)) throw new UserError(`User "${name}" already exists`);
      for (const d of normalized) this.#checkFree(d, name);
      this.#prepare(
        "INSERT INTO users (name, created_at, scram_sha256, cram_md5, password_hash) " +
          "VALUES (?, ?, ?, ?, ?)",
      ).run(name, new Date().toISOString(), columns.scram, columns.cram, columns.hash);
      const insert = this.#prepare('INSERT INTO user_domains (domain, "user") VALUES (?, ?)');
      for (const d of normalized) insert.run(d, name);
    });
  }

  /** Replaces every stored verifier of `name`. */
  async setPassword(name: string, password: string): Promise<void> {
    checkUserName(name);
    const columns = await this.#verifierColumns(password);
    inImmediateTransaction(this.#db, () => {
      this.#requireUser(name);
      this.#prepare(
        "UPDATE users SET scram_sha256 = ?, cram_md5 = ?, password_hash = ? WHERE name = ?",
      ).run(columns.scram, columns.cram, columns.hash, name);
    });
  }

  /** Deletes `name` and its domains. */
  removeUser(name: string): void {
    this.#changeOwners(() => {
      this.#requireUser(name);
      // Explicit as well as ON DELETE CASCADE: correct even if foreign_keys were off.
      this.#prepare('DELETE FROM user_domains WHERE "user" = ?').run(name);
      this.#prepare("DELETE FROM users WHERE name = ?").run(name);
    });
  }

  /** Every user with its domains, sorted by name. */
  listUsers(): UserEntry[] {
    const users = this.#prepare("SELECT name FROM users ORDER BY name").all();
    const rows = this.#prepare('SELECT domain, "user" FROM user_domains ORDER BY domain').all();
    const byUser = new Map<string, string[]>();
    for (const row of rows) {
      const user = stringField(row, "user");
      const domain = stringField(row, "domain");
      if (user === undefined || domain === undefined) continue;
      const list = byUser.get(user) ?? [];
      list.push(domain);
      byUser.set(user, list);
    }
    const out: UserEntry[] = [];
    for (const row of users) {
      const name = stringField(row, "name");
      if (name !== undefined) out.push({ name, domains: byUser.get(name) ?? [] });
    }
    return out;
  }

  /** True when `name` exists. */
  hasUser(name: string): boolean {
    return this.#exists(name);
  }

  /** The domains `name` owns, sorted (empty for an unknown user). */
  domainsOf(name: string): string[] {
    return this.#prepare('SELECT domain FROM user_domains WHERE "user" = ? ORDER BY domain')
      .all(name).map((row) => stringField(row, "domain")).filter((d) => d !== undefined);
  }

  /** The owner of `domain` (normalised first), or undefined. */
  ownerOf(domain: string): string | undefined {
    return this.#owners.ownerOf(domain);
  }

  /** Gives `domains` to `name`; a domain it already owns is left as is. */
  addDomains(name: string, domains: readonly string[]): void {
    this.changeDomains(name, domains, []);
  }

  /** Takes `domains` from `name`; each must currently belong to it. */
  removeDomains(name: string, domains: readonly string[]): void {
    this.changeDomains(name, [], domains);
  }

  /**
   * Gives `add` to `name`, then takes `remove` from it (each must then belong to it), in one
   * transaction: a refused domain changes nothing (`user domains --add … --remove …`).
   */
  changeDomains(name: string, add: readonly string[], remove: readonly string[]): void {
    const toAdd = normalizeDomains(add);
    const toRemove = normalizeDomains(remove);
    this.#changeOwners(() => {
      this.#requireUser(name);
      const insert = this.#prepare(
        'INSERT INTO user_domains (domain, "user") VALUES (?, ?) ON CONFLICT(domain) DO NOTHING',
      );
      for (const d of toAdd) {
        this.#checkFree(d, name);
        insert.run(d, name);
      }
      for (const d of toRemove) {
        const owner = this.#ownerOfNormalized(d);
        if (owner !== name) {
          throw new UserError(`Domain "${d}" does not belong to user "${name}"`);
        }
      }
      const del = this.#prepare('DELETE FROM user_domains WHERE domain = ? AND "user" = ?');
      for (const d of toRemove) del.run(d, name);
    });
  }

  /** The stored verifiers of `name`, or undefined for an unknown user. */
  getVerifiers(name: string): StoredVerifiers | undefined {
    const row = this.#prepare(
      "SELECT scram_sha256, cram_md5, password_hash FROM users WHERE name = ?",
    ).get(name);
    if (row === undefined) return undefined;
    const scram = stringField(row, "scram_sha256");
    const cram = stringField(row, "cram_md5");
    return {
      scramSha256: scram === undefined ? undefined : parseScramVerifier(scram),
      cramMd5: cram === undefined ? undefined : parseCramVerifier(cram),
      passwordHash: stringField(row, "password_hash"),
    };
  }

  async #verifierColumns(
    password: string,
  ): Promise<{ scram: string; cram: string; hash: string }> {
    if (password === "") throw new UserError("Cannot use an empty password");
    if (saslPrep(password) === undefined) {
      throw new UserError("Cannot use this password: it contains control characters");
    }
    // AUTH PLAIN and LOGIN take at most this (sasl_server.ts, RFC 4616 §2): a longer one would
    // be stored, and refused by those two as malformed.
    if (new TextEncoder().encode(password).length > MAX_PASSWORD_OCTETS) {
      throw new UserError(
        `Cannot use this password: it is longer than ${MAX_PASSWORD_OCTETS} octets (UTF-8), ` +
          "the most AUTH PLAIN and LOGIN carry",
      );
    }
    const scram = formatScramVerifier(
      await deriveScramVerifier(
        password,
        this.#opts.scramIterations === undefined ? {} : { iterations: this.#opts.scramIterations },
      ),
    );
    const hash = await hashPassword(
      password,
      this.#opts.scryptParams === undefined ? {} : { params: this.#opts.scryptParams },
    );
    return { scram, cram: formatCramVerifier(cramContextFromPassword(password)), hash };
  }

  #exists(name: string): boolean {
    return this.#prepare("SELECT 1 AS one FROM users WHERE name = ?").get(name) !== undefined;
  }

  #requireUser(name: string): void {
    if (!this.#exists(name)) throw new UserError(`User "${name}" does not exist`);
  }

  #ownerOfNormalized(domain: string): string | undefined {
    return stringField(
      this.#prepare('SELECT "user" FROM user_domains WHERE domain = ?').get(domain),
      "user",
    );
  }

  #checkFree(domain: string, name: string): void {
    const owner = this.#ownerOfNormalized(domain);
    if (owner !== undefined && owner !== name) {
      throw new UserError(`Domain "${domain}" already belongs to user "${owner}"`);
    }
  }
}

function checkUserName(name: string): void {
  if (!isValidUserName(name)) {
    throw new UserError(
      `Invalid user name "${name}": use 1-64 characters of letters, digits and . _ @ + -`,
    );
  }
}

function normalizeDomains(domains: readonly string[]): string[] {
  const out = new Set<string>();
  for (const input of domains) {
    const d = normalizeDomain(input);
    if (d === undefined) {
      throw new UserError(
        `Invalid domain "${input}": expected a host name with at least two labels`,
      );
    }
    out.add(d);
  }
  return [...out];
}

function stringField(row: unknown, key: string): string | undefined {
  if (typeof row !== "object" || row === null) return undefined;
  const v: unknown = (row as Record<string, unknown>)[key];
  return typeof v === "string" ? v : undefined;
}
