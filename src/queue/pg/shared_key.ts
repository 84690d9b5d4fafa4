/**
 * Random keys every node must hold the same copy of, kept in the shared database: with
 * PostgreSQL a key in `data_dir` would differ per node. The first node to ask creates it; the
 * others, racing or later, read that one (an insert that does nothing on conflict, then a read,
 * under a transaction-scoped advisory lock). The key itself is never logged.
 *
 * The SCRAM fake-salt key (src/auth/fake_salt_key.ts) is the one kept here: an unknown user name
 * must get the same salt from every node, or asking two MX hosts tells which names exist.
 */
import { randomBytes } from "node:crypto";
import type { Sql } from "./connect.ts";
import { PG_CALL_DEADLINE_MS, transactionWithin } from "./_deadline.ts";

/** Advisory lock key of the table's creation ("odmk"), apart from the migrations' key. */
const KEYS_LOCK = 0x6f646d6b;

/**
 * Reads the key `name` of `bytes` random bytes, creating it once cluster-wide, within
 * `deadlineMs` (`transactionWithin`, _deadline.ts: serve's start waited for good on a silent
 * connection); another node's turn lasts milliseconds.
 */
export async function loadSharedKey(
  sql: Sql,
  name: string,
  bytes: number,
  deadlineMs: number = PG_CALL_DEADLINE_MS,
): Promise<Uint8Array> {
  const fresh = new Uint8Array(randomBytes(bytes));
  const value = await transactionWithin(sql, deadlineMs, "shared key", async (tx) => {
    // CREATE TABLE IF NOT EXISTS is not safe against a concurrent creator: take turns.
    await tx`SELECT pg_advisory_xact_lock(${KEYS_LOCK})`;
    await tx`CREATE TABLE IF NOT EXISTS shared_keys (
      name text PRIMARY KEY,
      value bytea NOT NULL,
      created_at bigint NOT NULL)`;
    await tx`INSERT INTO shared_keys (name, value, created_at)
      VALUES (${name}, ${fresh}, ${Date.now()}) ON CONFLICT (name) DO NOTHING`;
    const [row] = await tx`SELECT value FROM shared_keys WHERE name = ${name}`;
    return row?.value as unknown;
  }, () => {});
  fresh.fill(0);
  if (!(value instanceof Uint8Array) || value.length !== bytes) {
    throw new Error(
      `Shared key "${name}" in table shared_keys must hold ${bytes} bytes ` +
        `(delete its row and a new one is made at the next start)`,
    );
  }
  return new Uint8Array(value);
}
