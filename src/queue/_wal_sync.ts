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

/** WAL pages after which a COMMIT checkpoints (SQLite's default is 1000). */
export const WAL_CHECKPOINT_PAGES = 4000;

/** Makes the WAL's committed frames durable. */
export interface WalSync {
  /** Resolves once everything committed before the call is on disk. */
  sync(): Promise<void>;
  /** The same on the calling thread (for synchronous transactions and close). */
  syncNow(): void;
  /** Closes the file handle. */
  close(): void;
}

/** The main database file of a connection ("" for an in-memory or temporary database). */
function mainFile(db: DatabaseSync): string {
  for (const row of db.prepare("PRAGMA database_list").all()) {
    if (row.name === "main") return typeof row.file === "string" ? row.file : "";
  }
  return "";
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
  // A checkpoint runs inside a COMMIT on the event loop and syncs the WAL and the database: a
  // fourth as many of them (WAL up to ~16 MB instead of ~4 MB) halved that fsync time at
  // 10 × 100 KB (strace; the pages copied stay the same).
  db.exec(`PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
  return sync;
}

/**
 * Syncs one WAL file through a read-only handle (fdatasync works on any descriptor of the file).
 * The WAL keeps its inode while the connection that writes it is open; should it still have
 * been replaced (checked before every sync), the handle is reopened.
 */
export class FileWalSync implements WalSync {
  readonly #path: string;
  #file: Deno.FsFile;
  #ino: number | null;
  /** Handles of a replaced WAL: a sync may still run on them, so they are closed last. */
  #stale: Deno.FsFile[] = [];

  constructor(path: string) {
    this.#path = path;
    this.#file = Deno.openSync(path, { read: true });
    this.#ino = this.#file.statSync().ino;
  }

  async sync(): Promise<void> {
    await this.#current().syncData();
  }

  syncNow(): void {
    this.#current().syncDataSync();
  }

  close(): void {
    for (const f of [...this.#stale, this.#file]) {
      try {
        f.close();
      } catch {
        // Already closed.
      }
    }
    this.#stale = [];
  }

  #current(): Deno.FsFile {
    const ino = Deno.statSync(this.#path).ino;
    if (ino !== this.#ino) {
      this.#stale.push(this.#file);
      this.#file = Deno.openSync(this.#path, { read: true });
      this.#ino = this.#file.statSync().ino;
    }
    return this.#file;
  }
}
