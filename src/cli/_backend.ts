/**
 * The composition point of the storage backend: the one place that names the concrete
 * stores. SQLite: `data_dir/odmr.db` holds the queue, users and state. PostgreSQL: one database
 * shared by every node; the credential store runs over an in-memory copy of the users that
 * follows the database (src/queue/pg/auth_mirror.ts). Everything else sees `QueueStore`.
 */
import { DatabaseSync } from "node:sqlite";
import { FAKE_SALT_KEY_BYTES, loadFakeSaltKey } from "../auth/fake_salt_key.ts";
import { CredentialStore, type CredentialStoreOptions } from "../auth/store.ts";
import type { Config } from "../config/types.ts";
import { type DkimKeys, DkimKeyStore } from "../dkim/keys.ts";
import { PgDkimKeys } from "../dkim/pg_keys.ts";
import type { Logger } from "../observe/log.ts";
import { NULL_LOGGER } from "../observe/log.ts";
import type { AtrnSuccessStore } from "../observe/metrics.ts";
import { type QueueAdmin, SqliteQueueAdmin } from "../queue/admin.ts";
import { openDatabase } from "../queue/db.ts";
import { PgQueueAdmin } from "../queue/pg/admin.ts";
import { AuthMirror, editAuthSnapshot, readAuthSnapshot } from "../queue/pg/auth_mirror.ts";
import { connectPostgres, type Sql } from "../queue/pg/connect.ts";
import { applyPgMigrations } from "../queue/pg/schema.ts";
import { loadSharedKey } from "../queue/pg/shared_key.ts";
import { PgQueueStore } from "../queue/pg/store.ts";
import { PgUserState } from "../queue/pg/user_state.ts";
import { SqliteQueueStore } from "../queue/sqlite_store.ts";
import type { QueueStore } from "../queue/types.ts";
import { UserStateStore } from "../queue/user_state.ts";
import type { StorageChoice } from "./io.ts";

/** What `serve` runs on. */
export interface ServeBackend {
  readonly store: QueueStore;
  readonly credentials: CredentialStore;
  /** The last successful ATRN per user, kept across restarts (metrics). */
  readonly userState: AtrnSuccessStore;
  /**
   * Derives the SCRAM salts of unknown user names: the same for every node of a database,
   * and across restarts (src/auth/fake_salt_key.ts).
   */
  readonly fakeSaltKey: Uint8Array;
  /** The DKIM signing keys: `data_dir/dkim` with SQLite, the shared database with PostgreSQL. */
  readonly dkimKeys: DkimKeys;
  /** Closes the queue and whatever else the backend holds. */
  close(): Promise<void>;
}

/**
 * Opens the queue, the users and the per-user state for `serve` (the receiving process: it
 * may remove orphan body chunks). Throws one Error line (no password) when it cannot.
 */
export async function openServeBackend(
  config: Config,
  opts: { logger: Logger },
): Promise<ServeBackend> {
  const pg = config.queue.backend === "postgres" ? config.queue.postgres : undefined;
  if (pg === undefined) {
    const db = openDatabase(config.dataDir);
    try {
      const store = new SqliteQueueStore(db, { logger: opts.logger });
      return {
        store,
        credentials: new CredentialStore(db),
        userState: new UserStateStore(db),
        fakeSaltKey: loadFakeSaltKey(config.dataDir),
        dkimKeys: new DkimKeyStore(config.dataDir),
        close: () => store.close(),
      };
    } catch (err) {
      db.close();
      throw err;
    }
  }
  // data_dir still holds this node's own files (keys), as with SQLite.
  await Deno.mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const store = await PgQueueStore.open(
    {
      url: pg.url,
      passwordFile: pg.passwordFile,
      applicationName: `odmr-relay ${config.hostname}`,
    },
    { nodeId: config.hostname, logger: opts.logger },
  );
  try {
    const copy = new DatabaseSync(":memory:");
    const credentials = new CredentialStore(copy);
    const mirror = await AuthMirror.start(store.pool, copy, opts.logger);
    const userState = await PgUserState.open(store.pool, opts.logger);
    // In the database, not in data_dir: a file per node would give each node its own salts.
    const fakeSaltKey = await loadSharedKey(store.pool, "scram_fake_salt", FAKE_SALT_KEY_BYTES);
    return {
      store,
      credentials,
      userState,
      fakeSaltKey,
      dkimKeys: new PgDkimKeys(store.pool),
      close: async () => {
        await mirror.stop();
        await store.close();
        copy.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * Opens the queue for a tool running beside `serve` (`queue …`): it never removes orphan
 * chunks, which may belong to a message `serve` is still receiving.
 */
export async function openToolQueue(dataDir: string, storage?: StorageChoice): Promise<QueueStore> {
  const pg = storage?.backend === "postgres" ? storage.postgres : undefined;
  if (pg === undefined) {
    return new SqliteQueueStore(openDatabase(dataDir), { removeOrphans: false });
  }
  // A tool owns no leases: its node id matches no session's.
  return await PgQueueStore.open(
    { url: pg.url, passwordFile: pg.passwordFile, max: 2, applicationName: "odmr-relay tool" },
    { nodeId: `tool-${Deno.pid}`, logger: NULL_LOGGER },
  );
}

/**
 * Opens the operator queries (`queue requeue|summary`, the figures of `user list|show`) of
 * `dataDir` or of the PostgreSQL database, on connections of their own, beside `serve`.
 */
export async function openToolAdmin(
  dataDir: string,
  storage?: StorageChoice,
): Promise<QueueAdmin> {
  const pg = storage?.backend === "postgres" ? storage.postgres : undefined;
  if (pg === undefined) return SqliteQueueAdmin.open(dataDir);
  return await PgQueueAdmin.open({
    url: pg.url,
    passwordFile: pg.passwordFile,
    applicationName: "odmr-relay tool",
  });
}

/** The users for the `user` command: edits run as one change every node sees at once. */
export interface ToolCredentials {
  /** Runs `fn` on the store as it is now (no lock). */
  read<T>(fn: (store: CredentialStore) => Promise<T>): Promise<T>;
  /** Runs `fn` on the store; with PostgreSQL, inside a transaction holding the users locked. */
  edit<T>(fn: (store: CredentialStore) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Opens the users of `dataDir` or of the PostgreSQL database. */
export async function openToolCredentials(
  dataDir: string,
  storage: StorageChoice | undefined,
  opts: CredentialStoreOptions = {},
): Promise<ToolCredentials> {
  const pg = storage?.backend === "postgres" ? storage.postgres : undefined;
  if (pg === undefined) {
    const store = CredentialStore.open(dataDir, opts);
    return {
      read: (fn) => fn(store),
      edit: (fn) => fn(store),
      close: () => Promise.resolve(store.close()),
    };
  }
  const store = await PgQueueStore.open(
    { url: pg.url, passwordFile: pg.passwordFile, max: 2, applicationName: "odmr-relay user" },
    { nodeId: `tool-${Deno.pid}`, logger: NULL_LOGGER },
  );
  const sql: Sql = store.pool;
  const copy = new DatabaseSync(":memory:");
  const credentials = new CredentialStore(copy, opts);
  return {
    read: async (fn) => {
      await readAuthSnapshot(sql, copy);
      return await fn(credentials);
    },
    edit: (fn) => editAuthSnapshot(sql, copy, () => fn(credentials)),
    close: async () => {
      copy.close();
      await store.close();
    },
  };
}

/** The DKIM keys for the `dkim` command. */
export interface ToolDkimKeys {
  readonly keys: DkimKeys;
  close(): Promise<void>;
}

/** Opens the DKIM keys of `dataDir` or of the PostgreSQL database (which every node shares). */
export async function openToolDkimKeys(
  dataDir: string,
  storage?: StorageChoice,
): Promise<ToolDkimKeys> {
  const pg = storage?.backend === "postgres" ? storage.postgres : undefined;
  if (pg === undefined) {
    return { keys: new DkimKeyStore(dataDir), close: () => Promise.resolve() };
  }
  const sql = await connectPostgres({
    url: pg.url,
    passwordFile: pg.passwordFile,
    max: 2,
    applicationName: "odmr-relay dkim",
  });
  try {
    await applyPgMigrations(sql);
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {});
    throw err;
  }
  return {
    keys: new PgDkimKeys(sql),
    close: () => sql.end({ timeout: 5 }),
  };
}
