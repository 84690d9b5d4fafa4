/**
 * Domain owners remembered between lookups (every RCPT at an MX asks): a lookup costs one
 * `PRAGMA data_version` instead of the domain's normalisation and a query of `user_domains`.
 * Everything remembered is forgotten as soon as the database may have changed: when another
 * connection committed (`user add` beside a running `serve`; data_version changes,
 * https://sqlite.org/pragma.html#pragma_data_version), and when a store on this connection
 * changed users or domains, or the PostgreSQL backend reloaded its in-memory copy of them
 * (data_version does not count a connection's own writes, so those writers call
 * `noteUsersChanged`). A user added or removed is therefore seen at the next lookup, as with
 * a query each time.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { usersChangeCount } from "../queue/db.ts";
import { normalizeDomain } from "./domain.ts";

/** Domains remembered at most (names a peer chose included): then all are forgotten. */
export const MAX_REMEMBERED_DOMAINS = 1024;

/** The owner of each domain asked, as `user_domains` says now. */
export class DomainOwners {
  readonly #db: DatabaseSync;
  readonly #dataVersion: StatementSync;
  readonly #query: (normalized: string) => string | undefined;
  /** By the domain as asked (before normalisation); null: no owner. */
  readonly #owners = new Map<string, string | null>();
  #version: unknown = undefined;
  #changes = -1;

  /** `query` reads the owner of a normalised domain from the database. */
  constructor(db: DatabaseSync, query: (normalized: string) => string | undefined) {
    this.#db = db;
    this.#dataVersion = db.prepare("PRAGMA data_version");
    this.#query = query;
  }

  /** The owner of `domain` (normalised first), or undefined. */
  ownerOf(domain: string): string | undefined {
    const version = this.#dataVersion.get()?.data_version;
    const changes = usersChangeCount(this.#db);
    if (version !== this.#version || changes !== this.#changes) {
      this.#owners.clear();
      this.#version = version;
      this.#changes = changes;
    }
    const known = this.#owners.get(domain);
    if (known !== undefined) return known ?? undefined;
    const normalized = normalizeDomain(domain);
    const owner = normalized === undefined ? undefined : this.#query(normalized);
    if (this.#owners.size >= MAX_REMEMBERED_DOMAINS) this.#owners.clear();
    this.#owners.set(domain, owner ?? null);
    return owner;
  }
}
