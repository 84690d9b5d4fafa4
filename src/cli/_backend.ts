/**
 * The composition point of the storage backend: the one place that names the concrete
 * stores. SQLite: `data_dir/odmr.db` holds the queue, users and state. PostgreSQL: one database
 * shared by every node (src/cli/_backend_pg.ts, loaded with import() only when configured:
 * a SQLite node never loads postgres.js). Everything else sees `QueueStore`.
 */
import { DiskFullness } from "./_serve_disk.ts";
import { loadFakeSaltKey } from "../auth/fake_salt_key.ts";
import { CredentialStore, type CredentialStoreOptions } from "../auth/store.ts";
import type { Config } from "../config/types.ts";
import { DkimKeyStore } from "../dkim/keys.ts";
import type { Logger } from "../observe/log.ts";
import { type QueueAdmin, SqliteQueueAdmin } from "../queue/admin.ts";
import { openDatabase, openDatabaseToRead } from "../queue/db.ts";
import { lockDataDir } from "../queue/serve_lock.ts";
import { movedAt, movedRefusal, QueueMovedError } from "../queue/moved_mark.ts";
import { SqliteQueueStore } from "../queue/sqlite_store.ts";
import { WAL_CHECKPOINT_PAGES, WAL_SHORT_PAGES } from "../queue/_wal_sync.ts";
import { SpaceReserve } from "../queue/space_reserve.ts";
import type { QueueStore } from "../queue/types.ts";
import { UserStateStore } from "../queue/user_state.ts";
import type { ServeBackend, ToolCredentials, ToolDkimKeys } from "./_backend_types.ts";
import type { StorageChoice } from "./io.ts";

export type { ServeBackend, ToolCredentials, ToolDkimKeys } from "./_backend_types.ts";

/**
 * Opens the queue, the users and the per-user state for `serve` (the receiving process: it
 * may remove orphan body chunks). SQLite: first takes the data directory's lock (one serve per
 * SQLite file, src/queue/serve_lock.ts), before the database is opened or migrated, and holds
 * it until `close`. Throws one Error line (no password) when it cannot, a DataDirBusyError
 * when another serve holds the lock, a QueueMovedError when `queue migrate` copied the queue to
 * PostgreSQL.
 */
export async function openServeBackend(
  config: Config,
  opts: { logger: Logger; isAlone?: () => boolean; isIdle?: () => boolean },
): Promise<ServeBackend> {
  const pg = config.queue.backend === "postgres" ? config.queue.postgres : undefined;
  if (pg === undefined) {
    const lock = await lockDataDir(config.dataDir);
    let db: ReturnType<typeof openDatabase> | undefined;
    try {
      // Before the database: on a full disk even its open may need the room (a new -shm file).
      const bytes = config.queue.spaceReserveBytes;
      const reserve = bytes === 0
        ? undefined
        : new SpaceReserve(config.dataDir, { log: opts.logger, bytes, margin: bytes });
      if (reserve === undefined) SpaceReserve.remove(config.dataDir);
      else reserve.start();
      const open = () => openDatabase(config.dataDir);
      db = reserve === undefined ? open() : reserve.retry("start", open);
      // Copied to PostgreSQL: serving it would deliver the copies again (moved_mark.ts).
      const moved = movedAt(db);
      if (moved !== undefined) throw new QueueMovedError(movedRefusal(config.dataDir, moved));
      // /healthz: also while the reserve is spent (asking may put it back, once a second at most).
      const disk = new DiskFullness(Date.now, () => reserve?.allowsMail() === false);
      const store = new SqliteQueueStore(db, {
        logger: opts.logger,
        onGroupCommit: disk.committed,
        ...(reserve === undefined ? {} : { reserve }),
        // serve's writes are bounded: its savepoint journal stays out of /var/tmp.
        tempInMemory: true,
        ...(opts.isAlone === undefined ? {} : { syncInline: opts.isAlone }),
        ...(opts.isIdle === undefined ? {} : { isIdle: opts.isIdle }),
      });
      // While the reserve is spent SQLite checkpoints sooner: the WAL starts over within the room
      // left instead of growing into it for as long as a drain's session is open.
      const wal = db;
      reserve?.watch((isKept) => {
        const pages = isKept ? WAL_CHECKPOINT_PAGES : WAL_SHORT_PAGES;
        if (wal.isOpen) wal.exec(`PRAGMA wal_autocheckpoint = ${pages}`);
      });
      return {
        store,
        disk,
        credentials: new CredentialStore(db),
        userState: new UserStateStore(db),
        fakeSaltKey: loadFakeSaltKey(config.dataDir),
        dkimKeys: new DkimKeyStore(config.dataDir),
        close: async () => {
          try {
            await store.close();
          } finally {
            lock.release();
          }
        },
      };
    } catch (err) {
      db?.close();
      lock.release();
      throw err;
    }
  }
  return await (await import("./_backend_pg.ts")).openPgServeBackend(config, pg, opts);
}

/**
 * Opens the queue for a tool running beside `serve` (`queue …`): it never removes orphan
 * chunks, which may belong to a message `serve` is still receiving. `readOnly`: it only reads
 * (on a full disk SQLite then may read the file as it is: db.ts `openDatabaseToRead`).
 */
export async function openToolQueue(
  dataDir: string,
  storage?: StorageChoice,
  opts: { readOnly?: boolean } = {},
): Promise<QueueStore> {
  const pg = storage?.backend === "postgres" ? storage.postgres : undefined;
  if (pg === undefined) {
    if (opts.readOnly === true) {
      const db = openDatabaseToRead(dataDir);
      try {
        return new SqliteQueueStore(db, { removeOrphans: false, readOnly: true });
      } catch (err) {
        db.close();
        throw err;
      }
    }
    // `queue delete` frees space, yet needs room itself: it may give serve's reserve back.
    const reserve = SpaceReserve.ofTool(dataDir);
    const db = reserve.retry("queue delete", () => openDatabase(dataDir));
    return new SqliteQueueStore(db, { removeOrphans: false, reserve });
  }
  return await (await import("./_backend_pg.ts")).openPgToolQueue(pg);
}

/**
 * Opens the operator queries (`queue requeue|summary`, the figures of `user list|show`) of
 * `dataDir` or of the PostgreSQL database, on connections of their own, beside `serve`.
 */
export async function openToolAdmin(
  dataDir: string,
  storage?: StorageChoice,
  opts: { readOnly?: boolean } = {},
): Promise<QueueAdmin> {
  const pg = storage?.backend === "postgres" ? storage.postgres : undefined;
  if (pg === undefined) {
    // A repair (`queue requeue`) may give serve's space reserve back, as `queue delete` does.
    return SqliteQueueAdmin.open(
      dataDir,
      opts.readOnly === true ? opts : { reserve: SpaceReserve.ofTool(dataDir) },
    );
  }
  return await (await import("./_backend_pg.ts")).openPgToolAdmin(pg);
}

/** Opens the users of `dataDir` or of the PostgreSQL database. */
export async function openToolCredentials(
  dataDir: string,
  storage: StorageChoice | undefined,
  opts: CredentialStoreOptions = {},
): Promise<ToolCredentials> {
  const pg = storage?.backend === "postgres" ? storage.postgres : undefined;
  if (pg === undefined) {
    // On a full disk a `user` command may give serve's space reserve back (its open, with serve
    // stopped, needs room for the -shm file; an edit, for its WAL frames), as `queue delete` does.
    const reserve = SpaceReserve.ofTool(dataDir);
    const open = (dir: string) => reserve.retry("user command", () => openDatabase(dir));
    const store = CredentialStore.open(dataDir, opts, open);
    return {
      read: (fn) => fn(store),
      edit: async (fn) => {
        try {
          return await fn(store);
        } catch (err) {
          // The edit's transaction was rolled back: once more, with the reserve's room.
          if (!reserve.isFull(err) || !reserve.giveBack("user command", err)) throw err;
        }
        return await fn(store);
      },
      close: () => Promise.resolve(store.close()),
    };
  }
  return await (await import("./_backend_pg.ts")).openPgToolCredentials(pg, opts);
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
  return await (await import("./_backend_pg.ts")).openPgToolDkimKeys(pg);
}

/**
 * Where the queue and the users are, for an error line: `in "DATA_DIR"`, or with PostgreSQL
 * `in PostgreSQL "user@host:port/db"` (the data_dir holds nothing of them then).
 */
export async function storageWhere(dataDir: string, storage?: StorageChoice): Promise<string> {
  const pg = storage?.backend === "postgres" ? storage.postgres : undefined;
  if (pg === undefined) return `in "${dataDir}"`;
  return `in PostgreSQL "${(await import("../queue/pg/connect.ts")).describeUrl(pg.url)}"`;
}
