/** The options of `SqliteQueueStore` (sqlite_store.ts). */
import type { Logger } from "../observe/log.ts";
import type { CommitLevel } from "./_group_tx.ts";
import type { BodyFilesOptions } from "./_body_files.ts";
import type { WalSync } from "./_wal_sync.ts";
import type { SpaceReserve } from "./space_reserve.ts";

/** Options of `SqliteQueueStore`. */
export interface SqliteQueueStoreOptions {
  /** Clock in milliseconds since the epoch (tests inject one). */
  readonly now?: () => number;
  /** Bytes per stored body chunk. */
  readonly chunkBytes?: number;
  readonly logger?: Logger;
  /**
   * Delete chunk rows that have no message (left by a crash) when opening. Default true.
   * Only the process that receives mail (`serve`) may do it: in another process (`queue …`
   * beside a running `serve`) those rows may belong to a message still being received.
   */
  readonly removeOrphans?: boolean;
  /**
   * Only reads (`queue list|show`): the schema is checked, never upgraded (db.ts
   * `checkSchemaToRead`). Default false.
   */
  readonly readOnly?: boolean;
  /** Called right after each group COMMIT with its level (tests count them). */
  readonly onGroupCommit?: (level: CommitLevel) => void;
  /**
   * Makes group commits durable off the event loop (tests inject one). Default: the WAL file's
   * `deferWalSync`, or none for an in-memory database (its COMMIT decides).
   */
  readonly walSync?: WalSync;
  /**
   * True when a WAL sync may run on the event loop: nothing else would wait for it (serve:
   * at most one session open), and the lone sender is spared the hand-off to a thread.
   * Default: never (always off the loop).
   */
  readonly syncInline?: () => boolean;
  /**
   * `temp_store = MEMORY` after the migrations: the savepoint journal a drain's settle batch
   * spilled to /var/tmp every batch (#13) stays in memory. Only for bounded writes (serve's);
   * a `queue delete` of a whole domain would journal all of it. Default false.
   */
  readonly tempInMemory?: boolean;
  /** Quiet time before the store checkpoints the WAL (IDLE_CHECKPOINT_MS; tests shorten it). */
  readonly idleCheckpointMs?: number;
  /** False while that checkpoint must wait (serve: some session is open). Default: always true. */
  readonly isIdle?: () => boolean;
  /** false: bodies stay in SQLite; default: those of a chunk or more in files (_body_files.ts). */
  readonly bodyFiles?: false | BodyFilesOptions;
  /**
   * serve's space reserve (space_reserve.ts): given back when a claim, a settlement or a lease's
   * write fails for lack of room; while it is spent `begin` refuses new mail. Default: none.
   */
  readonly reserve?: SpaceReserve;
}
