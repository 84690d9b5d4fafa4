/**
 * What the storage backend hands to the commands (src/cli/_backend.ts opens it), in a module of
 * its own so that the PostgreSQL side (src/cli/_backend_pg.ts, loaded only when configured)
 * and the dispatching side share the shapes without importing each other.
 */
import type { DiskFullness } from "./_serve_disk.ts";
import type { CredentialStore } from "../auth/store.ts";
import type { DkimKeys } from "../dkim/keys.ts";
import type { AtrnSuccessStore } from "../observe/metrics.ts";
import type { QueueStore } from "../queue/types.ts";

/** What `serve` runs on. */
export interface ServeBackend {
  readonly store: QueueStore;
  /** SQLite: whether messages are refused for lack of space (/healthz). */
  readonly disk?: DiskFullness;
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
  /**
   * PostgreSQL: resolves (once logged) when another serve of this hostname took the node's
   * lock after this one's lock connection was lost (src/queue/pg/node_lock.ts): serve stops
   * as on a signal, and exits 1.
   */
  readonly lost?: Promise<"node_lock_lost">;
  /** Closes the queue and whatever else the backend holds. */
  close(): Promise<void>;
}

/** The users for the `user` command: edits run as one change every node sees at once. */
export interface ToolCredentials {
  /** Runs `fn` on the store as it is now (no lock). */
  read<T>(fn: (store: CredentialStore) => Promise<T>): Promise<T>;
  /** Runs `fn` on the store; with PostgreSQL, inside a transaction holding the users locked. */
  edit<T>(fn: (store: CredentialStore) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The DKIM keys for the `dkim` command. */
export interface ToolDkimKeys {
  readonly keys: DkimKeys;
  close(): Promise<void>;
}
