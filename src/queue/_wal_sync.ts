/**
 * Durability of group commits without an fsync on the event loop. The connection commits with
 * `synchronous = NORMAL` (frames written to the WAL file, not yet synced), then the WAL file is
 * synced with an asynchronous `fdatasync` (Deno runs it on a blocking thread), and only then are
 * the waiters (the 250 after DATA) told. A synced WAL holds every frame written before the sync,
 * commit frames included: the same guarantee as `synchronous = FULL`, which syncs the WAL inside
 * COMMIT (https://sqlite.org/wal.html, https://sqlite.org/pragma.html#pragma_synchronous).
 * Checkpoints stay safe in NORMAL: SQLite syncs the WAL before and the database after each one.
 */
import type { DatabaseSync } from "node:sqlite";
import { mainFile } from "./db.ts";

/** WAL syncs that may run at once (each covers every COMMIT before it started). */
export const MAX_SYNCS = 4;

/**
 * WAL pages after which a COMMIT checkpoints (SQLite's default is 1000): the bound of the WAL
 * while writes never pause (on a busy MX some session is nearly always open). The store copies
 * the WAL sooner whenever writes pause and nobody is connected (_idle_checkpoint.ts). Kept at
 * 4000: at 16384 a copy inside a COMMIT held the loop ~216 ms instead of ~55 ms (100 KB
 * commits, sessions always open).
 */
export const WAL_CHECKPOINT_PAGES = 4000;

/**
 * The same bound while the space reserve is spent (a full disk, src/queue/space_reserve.ts):
 * a drain's session holds the store's own checkpoint back, and at WAL_CHECKPOINT_PAGES its
 * settlements' frames (~16 MB) outgrew the room the reserve gave back (8 MB by default).
 */
export const WAL_SHORT_PAGES = 256;

/**
 * What the WAL file keeps of its size when a checkpoint lets SQLite start it over: about twice
 * what it holds between two checkpoints (4 KiB pages). Writes after a checkpoint then overwrite
 * space the file already has, and their fdatasync need not also journal a new file size (about
 * half the time here, and not held up by other files' data in the same ext4 journal commit).
 */
export const WAL_KEEP_BYTES = 2 * WAL_CHECKPOINT_PAGES * 4096;

/** Makes the WAL's committed frames durable. */
export interface WalSync {
  /** Resolves once everything committed before the call is on disk. */
  sync(): Promise<void>;
  /** The same on the calling thread (for synchronous transactions and close). */
  syncNow(): void;
  /** Closes the file handle. */
  close(): void;
}

/**
 * For a file database in WAL mode: switches the connection to `synchronous = NORMAL` and returns
 * the `WalSync` that gives its commits back FULL's durability. Undefined otherwise (in-memory
 * databases, other journal modes): the connection's own COMMIT then decides, as before. Other
 * writes on the same connection (serve's per-user ATRN times) are on disk with the next sync.
 */
export function deferWalSync(db: DatabaseSync): WalSync | undefined {
  const mode = db.prepare("PRAGMA journal_mode").get()?.journal_mode;
  const file = mainFile(db);
  if (mode !== "wal" || file === "") return undefined;
  // The WAL file exists from the connection's first access in WAL mode; make sure it does.
  db.prepare("SELECT count(*) AS n FROM sqlite_master").get();
  const sync = new FileWalSync(`${file}-wal`);
  db.exec("PRAGMA synchronous = NORMAL");
  // SQLite's checkpoint runs inside a COMMIT on the event loop and syncs the WAL and the
  // database: a fourth as many of them (WAL up to ~16 MB instead of ~4 MB) halved that fsync
  // time at 10 × 100 KB (strace; the pages copied stay the same).
  db.exec(`PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
  db.prepare(`PRAGMA journal_size_limit = ${WAL_KEEP_BYTES}`).get();
  return sync;
}

/**
 * Syncs one WAL file through read-only handles opened at start (fdatasync works on any descriptor
 * of the file), one handle per sync that may run at once. Linux reports a failed write-back once
 * to each open file description, to the first fsync that checks it: two syncs sharing one
 * descriptor could see one failure and one success, the success covering pages that were never
 * written (fsyncgate). With a descriptor each, every sync that checks after the failure sees it.
 * No handle is reopened: a descriptor opened after a failure would not hear of it, and the WAL
 * keeps its inode while the store's connection is open (SQLite deletes it only when the last
 * connection closes, and truncates it in place).
 */
export class FileWalSync implements WalSync {
  /** Handles not syncing now (for `sync`). */
  readonly #free: Deno.FsFile[] = [];
  /** Every handle, to close. */
  readonly #all: Deno.FsFile[] = [];
  /** The handle of `syncNow`, which may run beside `sync`s still on their threads. */
  readonly #inline: Deno.FsFile;
  /** `sync` calls waiting for a free handle (more at once than handles). */
  readonly #queued: (() => void)[] = [];

  constructor(path: string, handles = MAX_SYNCS) {
    try {
      this.#inline = this.#open(path);
      for (let i = 0; i < handles; i++) this.#free.push(this.#open(path));
    } catch (err) {
      this.close();
      throw err;
    }
  }

  async sync(): Promise<void> {
    let file = this.#free.pop();
    while (file === undefined) {
      if (this.#all.length === 0) throw new Error("WAL sync after close");
      await new Promise<void>((resolve) => this.#queued.push(resolve));
      file = this.#free.pop();
    }
    try {
      await file.syncData();
    } finally {
      this.#free.push(file);
      this.#queued.shift()?.();
    }
  }

  syncNow(): void {
    this.#inline.syncDataSync();
  }

  close(): void {
    for (const f of this.#all) {
      try {
        f.close();
      } catch {
        // Already closed.
      }
    }
    this.#all.length = 0;
    this.#free.length = 0;
    // Syncs waiting for a handle end with an error instead of waiting for ever.
    for (const wake of this.#queued.splice(0)) wake();
  }

  #open(path: string): Deno.FsFile {
    const file = Deno.openSync(path, { read: true });
    this.#all.push(file);
    return file;
  }
}
