/**
 * The queue's own WAL checkpoints, instead of SQLite's automatic one (`wal_autocheckpoint`),
 * which runs inside a COMMIT on the event loop: it syncs the WAL, copies its pages into the
 * database file and syncs that file, ~45 ms per 4000 pages of 100 KB bodies here, half of it the
 * database sync, and the 250s of that COMMIT's messages wait for all of it.
 *
 * Here a checkpoint starts when a WAL sync starts (`mark`): a second connection (the guard)
 * opens a read transaction, so that its snapshot ends at the last COMMIT, which that sync
 * covers. Once the sync succeeded (the 250s went out), a third connection with
 * `synchronous = OFF` copies the WAL's pages up to that snapshot into the database file (the
 * guard's read mark keeps it from copying later, maybe unsynced, frames), and the database file
 * is synced off the event loop (an asynchronous `fdatasync` on Deno's blocking threads). Until
 * that sync returns the guard keeps its read transaction: SQLite starts the WAL over only when
 * no reader holds a WAL snapshot (https://sqlite.org/wal.html, "WAL file reset"), so the frames
 * copied stay in the WAL until the database file holds them on disk. After a power loss the
 * WAL, whose frames up to the snapshot were synced, is replayed over whatever reached the
 * database file: the same guarantee as SQLite's own checkpoint, which syncs before the WAL is
 * reused.
 *
 * Under constant load such a checkpoint never copies everything (writes go on meanwhile), and
 * SQLite starts the WAL over only after one did: once the WAL holds `limitPages`, the next
 * COMMIT is followed by a plain checkpoint on the writer's own connection (`restartDue`,
 * SQLite's syncs, copies only what the last one left) so that the next write starts the WAL over.
 */
import { DatabaseSync } from "node:sqlite";
import { mainFile } from "./_wal_sync.ts";

/** WAL pages (not yet copied) at which a checkpoint starts. */
export const CHECKPOINT_PAGES = 4000;

/**
 * WAL pages after which the writer's connection checkpoints at its next COMMIT: below what the
 * WAL file keeps of its size (WAL_KEEP_BYTES in _wal_sync.ts, 2 × 4000 pages), less room for
 * the COMMITs of a group of large messages.
 */
export const WAL_LIMIT_PAGES = 2 * CHECKPOINT_PAGES - 1000;

/** Offsets in the `-shm` file (https://sqlite.org/walformat.html, native byte order). */
const SHM_MX_FRAME = 16;
const SHM_N_BACKFILL = 96;
const SHM_HEAD_BYTES = 100;

/** What a checkpointer does at each step; injected by tests. */
export interface CheckpointOptions {
  /** WAL pages not yet copied at which a checkpoint starts. */
  readonly pages?: number;
  /** WAL pages at which the writer's connection checkpoints after its next COMMIT. */
  readonly limitPages?: number;
  /** Syncs the database file (default: fdatasync of a handle opened at start). */
  readonly syncDatabase?: () => Promise<void>;
}

/**
 * For the writer's connection `db` of a file database in WAL mode (after `deferWalSync`):
 * turns SQLite's automatic checkpoint off and returns the checkpointer that replaces it.
 */
export function ownCheckpoints(
  db: DatabaseSync,
  opts: CheckpointOptions = {},
): WalCheckpointer | undefined {
  const file = mainFile(db);
  if (file === "" || db.prepare("PRAGMA journal_mode").get()?.journal_mode !== "wal") {
    return undefined;
  }
  let checkpointer: WalCheckpointer;
  try {
    checkpointer = new WalCheckpointer(file, opts);
  } catch {
    // No WAL index file to read (another locking mode): SQLite's own checkpoints stay on.
    return undefined;
  }
  db.exec("PRAGMA wal_autocheckpoint = 0");
  return checkpointer;
}

/** Checkpoints of one database file in WAL mode, written through one connection (see above). */
export class WalCheckpointer {
  readonly #path: string;
  readonly #pages: number;
  readonly #limitPages: number;
  readonly #shm: Deno.FsFile;
  readonly #head = new Uint8Array(SHM_HEAD_BYTES);
  readonly #dbFile: Deno.FsFile;
  readonly #syncDatabase: () => Promise<void>;
  /** Opened at the first checkpoint (serve idle keeps no more than the writer's connection). */
  #guard: DatabaseSync | undefined;
  #copier: DatabaseSync | undefined;
  #state: "idle" | "marked" | "copying" = "idle";
  /** WAL frames, and those copied, at the last look (mark). */
  #frames = 0;
  #backfilled = 0;
  /** A checkpoint copied and synced most of the WAL: the writer should finish the job. */
  #restartWanted = false;
  #isClosed = false;

  constructor(path: string, opts: CheckpointOptions = {}) {
    this.#path = path;
    this.#pages = opts.pages ?? CHECKPOINT_PAGES;
    this.#limitPages = opts.limitPages ?? WAL_LIMIT_PAGES;
    // Opened before any checkpoint writes: a write-back failure is reported to this descriptor
    // (see FileWalSync in _wal_sync.ts on why no handle is opened later).
    this.#dbFile = Deno.openSync(path, { read: true });
    try {
      this.#shm = Deno.openSync(`${path}-shm`, { read: true });
    } catch (err) {
      this.#dbFile.close();
      throw err;
    }
    this.#syncDatabase = opts.syncDatabase ?? (() => this.#dbFile.syncData());
  }

  /**
   * Called as a WAL sync starts, outside any write transaction of the writer: when enough pages
   * wait, takes the guard's snapshot (every COMMIT so far, all covered by that sync) and returns
   * true; `run` must then follow that sync's success, `cancel` its failure.
   */
  mark(): boolean {
    if (this.#state !== "idle" || this.#isClosed) return false;
    const wal = this.#walPages();
    this.#frames = wal.frames;
    this.#backfilled = wal.backfilled;
    if (wal.frames - wal.backfilled < this.#pages) return false;
    this.#guard ??= this.#open();
    this.#guard.exec("BEGIN");
    try {
      // A read starts the snapshot (a bare BEGIN does not).
      this.#guard.prepare("SELECT count(*) AS n FROM schema_version").get();
    } catch (err) {
      this.#guard.exec("ROLLBACK");
      throw err;
    }
    this.#state = "marked";
    return true;
  }

  /** The sync after `mark` failed: nothing is copied. */
  cancel(): void {
    if (this.#state !== "marked") return;
    this.#endGuard();
  }

  /**
   * After the sync that followed `mark` succeeded: copies the pages up to the guard's snapshot
   * into the database file (on this thread, no sync), then syncs that file off the loop and lets
   * the WAL start over. Rejects when the database file cannot be synced: the guard then keeps
   * its snapshot (the WAL is never started over, recovery has every frame).
   */
  async run(): Promise<void> {
    if (this.#state !== "marked") return;
    if (this.#isClosed) {
      this.#endGuard();
      return;
    }
    this.#state = "copying";
    this.#copier ??= this.#open("OFF");
    this.#copier.prepare("PRAGMA wal_checkpoint(PASSIVE)").get();
    await this.#syncDatabase();
    this.#endGuard();
    this.#restartWanted = true;
  }

  /**
   * True when the writer's connection, outside a transaction, should checkpoint (then call
   * `restarted`) so that its next write starts the WAL over: after each checkpoint of `run`
   * (what it left is little to copy), and whenever the WAL held `limitPages` or more at the
   * last `mark` with pages not copied (a bound on the WAL's size whatever happens to `run`).
   */
  restartDue(): boolean {
    if (this.#state !== "idle" || this.#isClosed) return false;
    return this.#restartWanted ||
      (this.#frames >= this.#limitPages && this.#backfilled < this.#frames);
  }

  /** The writer's connection checkpointed: the next `mark` looks again. */
  restarted(): void {
    this.#restartWanted = false;
    this.#frames = 0;
    this.#backfilled = 0;
  }

  /** Closes the extra connections and handles (a checkpoint under way stops holding the WAL). */
  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    for (
      const close of [
        () => this.#guard?.close(),
        () => this.#copier?.close(),
        () => this.#dbFile.close(),
        () => this.#shm.close(),
      ]
    ) {
      try {
        close();
      } catch {
        // Closing the rest matters more.
      }
    }
  }

  #endGuard(): void {
    this.#state = "idle";
    if (this.#isClosed) return;
    this.#guard?.exec("ROLLBACK");
  }

  #open(synchronous?: "OFF"): DatabaseSync {
    const db = new DatabaseSync(this.#path);
    db.exec("PRAGMA wal_autocheckpoint = 0");
    if (synchronous !== undefined) db.exec(`PRAGMA synchronous = ${synchronous}`);
    return db;
  }

  /** Frames in the WAL and frames already copied, from the WAL index's header. */
  #walPages(): { frames: number; backfilled: number } {
    this.#shm.seekSync(0, Deno.SeekMode.Start);
    let n = 0;
    while (n < SHM_HEAD_BYTES) {
      const got = this.#shm.readSync(this.#head.subarray(n));
      if (got === null || got === 0) break;
      n += got;
    }
    if (n < SHM_HEAD_BYTES) return { frames: 0, backfilled: 0 };
    const view = new DataView(this.#head.buffer);
    const frames = view.getUint32(SHM_MX_FRAME, LITTLE_ENDIAN);
    const backfilled = view.getUint32(SHM_N_BACKFILL, LITTLE_ENDIAN);
    return { frames, backfilled: Math.min(backfilled, frames) };
  }
}

/** The WAL index is in the machine's byte order. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
