/**
 * The composition point of the storage backend: the one place that names the SQLite classes.
 * Everything else (serve, the sessions, the `queue` command) sees the `QueueStore` interface.
 */
import { CredentialStore } from "../auth/store.ts";
import type { Logger } from "../observe/log.ts";
import { openDatabase } from "../queue/db.ts";
import { type QueueAdmin, SqliteQueueAdmin } from "../queue/admin.ts";
import { SqliteQueueStore } from "../queue/sqlite_store.ts";
import type { QueueStore } from "../queue/types.ts";
import { UserStateStore } from "../queue/user_state.ts";

/** What `serve` runs on. */
export interface ServeBackend {
  readonly store: QueueStore;
  readonly credentials: CredentialStore;
  /** The last successful ATRN per user, kept across restarts (metrics). */
  readonly userState: UserStateStore;
}

/**
 * Opens the queue, the users and the per-user state of `dataDir` for `serve` (the receiving
 * process: it may remove orphan body chunks). Throws an Error naming the path when it cannot.
 */
export function openServeBackend(dataDir: string, opts: { logger: Logger }): ServeBackend {
  const db = openDatabase(dataDir);
  try {
    const store = new SqliteQueueStore(db, { logger: opts.logger });
    return { store, credentials: new CredentialStore(db), userState: new UserStateStore(db) };
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Opens the queue of `dataDir` for a tool running beside `serve` (`queue …`): it never removes
 * orphan chunks, which may belong to a message `serve` is still receiving.
 */
export function openToolQueue(dataDir: string): QueueStore {
  return new SqliteQueueStore(openDatabase(dataDir), { removeOrphans: false });
}

/**
 * Opens the operator queries of `dataDir` (`queue requeue|summary`, the figures of `user
 * list|show`) on a connection of their own, beside `serve`.
 */
export function openToolAdmin(dataDir: string): QueueAdmin {
  return SqliteQueueAdmin.open(dataDir);
}
