/**
 * The DKIM signing keys in the PostgreSQL database of `queue.postgres` (table `dkim_keys`,
 * schema step 5 in src/queue/pg/schema.ts): several `serve` nodes share one database, and a
 * key kept in one node's `data_dir` would leave the others signing without it. Like the shared
 * keys of src/queue/pg/shared_key.ts a row is inserted once and never overwritten; the PEM is
 * never logged. `keysFor` queries on every call, so a key made by `dkim keygen` on any node
 * signs the next message every node sends, without a restart. Every call answers within its
 * deadline (src/queue/pg/_deadline.ts): a server gone silent fails `dkim keygen|list|remove`
 * and a delivery's signing with the reason, never holds them.
 */
import type { Sql } from "../queue/pg/connect.ts";
import { PG_CALL_DEADLINE_MS, within } from "../queue/pg/_deadline.ts";
import type { DkimKey } from "./signer.ts";
import { normalizeDomain } from "../auth/domain.ts";
import { loadNodeCrypto } from "../auth/node_crypto.ts";
import {
  checkNames,
  describeKey,
  type DkimKeys,
  generatePem,
  type KeyEntry,
  KeyStoreError,
  type KeyType,
  parsePrivateKey,
  signingKey,
} from "./keys.ts";

interface KeyRow {
  readonly domain: string;
  readonly selector: string;
  readonly pem: string;
  readonly "created_at": string | number | bigint;
}

/** The keys of one database (the pool belongs to the caller). */
export class PgDkimKeys implements DkimKeys {
  readonly #sql: Sql;
  readonly #now: () => number;
  readonly #deadlineMs: number;

  /** `deadlineMs`: how long a call (`keysFor`: an outbound delivery waits on it) may wait. */
  constructor(sql: Sql, now: () => number = Date.now, deadlineMs: number = PG_CALL_DEADLINE_MS) {
    this.#sql = sql;
    this.#now = now;
    this.#deadlineMs = deadlineMs;
  }

  async generate(domainInput: string, selectorInput: string, type: KeyType): Promise<KeyEntry> {
    const { domain, selector } = checkNames(domainInput, selectorInput);
    const pem = await generatePem(type);
    const rows = await within(
      this.#sql<KeyRow[]>`
        INSERT INTO dkim_keys (domain, selector, pem, created_at)
        VALUES (${domain}, ${selector}, ${pem}, ${this.#now()})
        ON CONFLICT (domain, selector) DO NOTHING
        RETURNING domain, selector, pem, created_at`,
      this.#deadlineMs,
      "DKIM key insert",
    );
    const [row] = rows;
    if (row === undefined) {
      throw new KeyStoreError(`A key for "${domain}" with selector "${selector}" already exists`);
    }
    return entryOf(row);
  }

  async list(): Promise<KeyEntry[]> {
    // COLLATE "C": byte order, as the data_dir store sorts, whatever the database's locale.
    const rows = await within(
      this.#sql<KeyRow[]>`
        SELECT domain, selector, pem, created_at FROM dkim_keys
        ORDER BY domain COLLATE "C", selector COLLATE "C"`,
      this.#deadlineMs,
      "DKIM key list",
    );
    await loadNodeCrypto(); // entryOf parses each key
    return rows.map(entryOf);
  }

  async remove(domainInput: string, selectorInput: string): Promise<boolean> {
    const { domain, selector } = checkNames(domainInput, selectorInput);
    const rows = await within(
      this.#sql`
        DELETE FROM dkim_keys WHERE domain = ${domain} AND selector = ${selector}
        RETURNING selector`,
      this.#deadlineMs,
      "DKIM key removal",
    );
    return rows.length > 0;
  }

  async keysFor(domainInput: string): Promise<DkimKey[]> {
    const domain = normalizeDomain(domainInput);
    if (domain === undefined) return [];
    const rows = await within(
      this.#sql<KeyRow[]>`
        SELECT domain, selector, pem, created_at FROM dkim_keys WHERE domain = ${domain}
        ORDER BY selector COLLATE "C"`,
      this.#deadlineMs,
      "DKIM keys",
    );
    await loadNodeCrypto(); // parsePrivateKey
    return rows.map((r) =>
      signingKey(r.domain, r.selector, parsePrivateKey(r.domain, r.selector, r.pem))
    );
  }
}

function entryOf(row: KeyRow): KeyEntry {
  const key = parsePrivateKey(row.domain, row.selector, row.pem);
  return {
    domain: row.domain,
    selector: row.selector,
    ...describeKey(key),
    createdAt: new Date(Number(row.created_at)),
    dnsName: `${row.selector}._domainkey.${row.domain}`,
  };
}
