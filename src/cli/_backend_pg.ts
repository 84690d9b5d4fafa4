/**
 * The PostgreSQL side of src/cli/_backend.ts: one database shared by every node; the
 * credential store runs over an in-memory copy of the users that follows the database
 * (src/queue/pg/auth_mirror.ts). Loaded with import() only when `queue.backend: postgres`
 * is configured, so that a SQLite `serve` never loads postgres.js (issue 13: idle memory).
 */
import { DatabaseSync } from "node:sqlite";
import { FAKE_SALT_KEY_BYTES } from "../auth/fake_salt_key.ts";
import { CredentialStore, type CredentialStoreOptions } from "../auth/store.ts";
import type { Config, PostgresConfig } from "../config/types.ts";
import { PgDkimKeys } from "../dkim/pg_keys.ts";
import type { Logger } from "../observe/log.ts";
import { NULL_LOGGER } from "../observe/log.ts";
import type { QueueAdmin } from "../queue/admin.ts";
import { PgQueueAdmin } from "../queue/pg/admin.ts";
import { AuthMirror, editAuthSnapshot, readAuthSnapshot } from "../queue/pg/auth_mirror.ts";
import { connectPostgres, type Sql } from "../queue/pg/connect.ts";
import { applyPgMigrations } from "../queue/pg/schema.ts";
import { PG_CALL_DEADLINE_MS, statementTimeoutFor } from "../queue/pg/_deadline.ts";
import { loadSharedKey } from "../queue/pg/shared_key.ts";
import { PgNodeLock } from "../queue/pg/node_lock.ts";
import { PgQueueStore } from "../queue/pg/store.ts";
import { PgUserState } from "../queue/pg/user_state.ts";
import type { QueueStore } from "../queue/types.ts";
import type { ServeBackend, ToolCredentials, ToolDkimKeys } from "./_backend_types.ts";

/** Where a tool finds the database (`queue.postgres` of the config). */
type PgLocation = Pick<PostgresConfig, "url" | "passwordFile">;

/** openServeBackend with `queue.backend: postgres`. */
export async function openPgServeBackend(
  config: Config,
  pg: PostgresConfig,
  opts: { logger: Logger },
): Promise<ServeBackend> {
  // data_dir still holds this node's own files (keys), as with SQLite.
  await Deno.mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const conn = { url: pg.url, passwordFile: pg.passwordFile };
  const applicationName = `odmr-relay ${config.hostname}`;
  // First: a second serve of this hostname stops here, before it touches the first's leases.
  const nodeLock = await PgNodeLock.take(
    { ...conn, applicationName },
    config.hostname,
    opts.logger,
  );
  let store: PgQueueStore;
  try {
    store = await PgQueueStore.open(
      { ...conn, applicationName, max: pg.poolSize },
      { nodeId: config.hostname, logger: opts.logger },
    );
  } catch (err) {
    await nodeLock.release();
    throw err;
  }
  try {
    const copy = new DatabaseSync(":memory:");
    const credentials = new CredentialStore(copy);
    // Every call on the pool within its deadline: a silent database fails serve's start
    // (startup_failed) rather than hanging it.
    const ms = store.callDeadlineMs;
    const mirror = await AuthMirror.start(store.pool, copy, opts.logger, ms);
    const userState = await PgUserState.open(store.pool, opts.logger, ms);
    // In the database, not in data_dir: a file per node would give each node its own salts.
    const fakeSaltKey = await loadSharedKey(store.pool, "scram_fake_salt", FAKE_SALT_KEY_BYTES, ms);
    return {
      store,
      credentials,
      userState,
      fakeSaltKey,
      dkimKeys: new PgDkimKeys(store.pool, Date.now, ms),
      lost: nodeLock.lost,
      close: async () => {
        await mirror.stop();
        await store.close();
        copy.close();
        await nodeLock.release();
      },
    };
  } catch (err) {
    await store.close();
    await nodeLock.release();
    throw err;
  }
}

/** openToolQueue on the database: a tool owns no leases (its node id matches no session's). */
export async function openPgToolQueue(pg: PgLocation): Promise<QueueStore> {
  return await PgQueueStore.open(
    { url: pg.url, passwordFile: pg.passwordFile, max: 2, applicationName: "odmr-relay tool" },
    { nodeId: `tool-${Deno.pid}`, logger: NULL_LOGGER },
  );
}

/** openToolAdmin on the database. */
export async function openPgToolAdmin(pg: PgLocation): Promise<QueueAdmin> {
  return await PgQueueAdmin.open({
    url: pg.url,
    passwordFile: pg.passwordFile,
    applicationName: "odmr-relay tool",
  });
}

/** openToolCredentials on the database: edits run as one change every node sees at once. */
export async function openPgToolCredentials(
  pg: PgLocation,
  opts: CredentialStoreOptions,
): Promise<ToolCredentials> {
  const store = await PgQueueStore.open(
    { url: pg.url, passwordFile: pg.passwordFile, max: 2, applicationName: "odmr-relay user" },
    { nodeId: `tool-${Deno.pid}`, logger: NULL_LOGGER },
  );
  const sql: Sql = store.pool;
  const copy = new DatabaseSync(":memory:");
  const credentials = new CredentialStore(copy, opts);
  return {
    read: async (fn) => {
      await readAuthSnapshot(sql, copy, store.callDeadlineMs);
      return await fn(credentials);
    },
    edit: (fn) => editAuthSnapshot(sql, copy, () => fn(credentials), store.callDeadlineMs),
    close: async () => {
      copy.close();
      await store.close();
    },
  };
}

/** openToolDkimKeys on the database (which every node shares). */
export async function openPgToolDkimKeys(pg: PgLocation): Promise<ToolDkimKeys> {
  // Each call within the deadline (src/dkim/pg_keys.ts), which the server is told too.
  const sql = await connectPostgres({
    url: pg.url,
    passwordFile: pg.passwordFile,
    max: 2,
    applicationName: "odmr-relay dkim",
    statementTimeoutMs: statementTimeoutFor(PG_CALL_DEADLINE_MS),
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
