/**
 * The set-up of the `queue migrate` tests: a SQLite data_dir with a config for a fresh database
 * of the test's PostgreSQL cluster (removed afterwards), mail queued into that SQLite queue,
 * and a lease that settles everything a domain has waiting (a node delivering it, or a
 * customer refusing it).
 */
import assert from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore, type SqliteQueueStoreOptions } from "../../src/queue/sqlite_store.ts";
import type { QueueStore, SettleOutcome } from "../../src/queue/types.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { postgresNodeConfig } from "../_helpers/postgres_nodes.ts";
import { removeTestFiles, writeTestConfig } from "../_helpers/server_process.ts";

/** What a migrate test gets: the database, the node config (mx-a.test) and its data_dir. */
export interface MigrateFiles {
  readonly url: string;
  readonly configPath: string;
  readonly dataDir: string;
}

/** Registers a PostgreSQL test on the database `db`; its files are removed afterwards. */
export async function migrateTest(
  name: string,
  db: string,
  fn: (files: MigrateFiles) => Promise<void>,
): Promise<void> {
  await postgresTest(name, async (pg) => {
    const url = await pg.createDatabase(db);
    const { configPath, dataDir } = await writeTestConfig({
      config: postgresNodeConfig("mx-a.test", url),
    });
    try {
      await fn({ url, configPath, dataDir });
    } finally {
      await removeTestFiles({ dataDir, configPath });
    }
  });
}

/** Runs `fn` on the SQLite queue of `dataDir` (as serve left it), then closes it. */
export async function inSqliteQueue<T>(
  dataDir: string,
  fn: (store: SqliteQueueStore) => Promise<T>,
  opts: SqliteQueueStoreOptions = {},
): Promise<T> {
  const store = new SqliteQueueStore(openDatabase(dataDir), opts);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * Claims `domain` on `store` and settles every recipient it offers with `outcome` (`reply`),
 * then releases: a node delivering them, or a customer refusing them. Returns the message ids.
 */
export async function settleAll(
  store: QueueStore,
  domain: string,
  outcome: SettleOutcome,
  reply = "250 ok",
): Promise<string[]> {
  const c = await store.claim([domain], { owner: "s1", leaseSeconds: 60 });
  assert.equal(c.kind, "claimed");
  const lease = (c as Extract<typeof c, { kind: "claimed" }>).lease;
  const messages = await Array.fromAsync(lease.messages());
  await lease.settle(
    messages.flatMap((m) =>
      m.recipients.map((r) => ({ messageId: m.id, recipientId: r.id, outcome, reply }))
    ),
  );
  await lease.release();
  return messages.map((m) => m.id);
}
