/**
 * One `serve` per SQLite data directory: an exclusive, non-blocking flock(2) on
 * `data_dir/serve.lock`, held for the process's lifetime. Two serves on one SQLite file would
 * both run maintenance, leases and bounces on it, and a serve older than schema step 7 would
 * read no body from a row a newer one stored inline. The lock is on a file of its own, never on
 * the database: SQLite takes POSIX (fcntl) locks on `odmr.db`, and closing any other
 * descriptor of that file would drop them. The kernel releases a flock when its process ends,
 * however it ends (kill -9 too), so a lock file left behind stops nobody. `user …` and
 * `queue …` take no lock: they work beside a running serve (WAL); only `queue migrate` takes
 * it (src/cli/_queue_migrate.ts), since a serve beside it would deliver what it copies.
 */
import { errorText } from "../errors.ts";
import { join } from "../posix_path.ts";

/** Name of the lock file inside the data directory. */
export const SERVE_LOCK_FILE = "serve.lock";

/** Another serve runs as this node: refused before any port is bound or a lease touched. */
export class ServeBusyError extends Error {}

/** Another serve holds this node's (`hostname`'s) lock in the shared PostgreSQL database. */
export class NodeBusyError extends ServeBusyError {
  override readonly name = "NodeBusyError";
}

/** Another process holds the lock of the data directory. */
export class DataDirBusyError extends ServeBusyError {
  override readonly name = "DataDirBusyError";
  /** The lock file. */
  readonly lockFile: string;
  /** The PID the holder wrote into the lock file, when it has written one. */
  readonly holder: number | undefined;
  /** What holds it (a lock file without the holder's name: a serve). */
  readonly by: LockHolder;

  constructor(message: string, lockFile: string, holder: number | undefined, by: LockHolder) {
    super(message);
    this.lockFile = lockFile;
    this.holder = holder;
    this.by = by;
  }
}

/** The held lock of one data directory. */
export interface ServeLock {
  /** Releases the lock (idempotent); the process's exit does the same. */
  release(): void;
}

/** Who holds a lock: a serve, or `queue migrate` while it copies the queue. */
export type LockHolder = "serve" | "queue migrate";

/**
 * Creates `dataDir` (mode 0700) if missing and locks it for this process (`holder`). Throws
 * DataDirBusyError (one line naming the directory and, when known, the holder and its PID)
 * when another process holds it, or an Error naming the lock file when it cannot be used.
 */
export async function lockDataDir(
  dataDir: string,
  holder: LockHolder = "serve",
): Promise<ServeLock> {
  const path = join(dataDir, SERVE_LOCK_FILE);
  let file: Deno.FsFile;
  let isLocked: boolean;
  try {
    await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
    file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  } catch (err) {
    throw new Error(`Cannot lock data_dir "${dataDir}" (${path}): ${errorText(err)}`);
  }
  try {
    isLocked = await file.tryLock(true);
  } catch (err) {
    file.close();
    throw new Error(`Cannot lock data_dir "${dataDir}" (${path}): ${errorText(err)}`);
  }
  if (!isLocked) {
    const other = await holderOf(file);
    file.close();
    const pid = other.pid === undefined ? "" : ` (pid ${other.pid})`;
    throw new DataDirBusyError(
      other.what === "queue migrate"
        ? `queue migrate${pid} holds data_dir "${dataDir}" (lock ${path}): it is copying ` +
          `this queue to PostgreSQL; serve that queue with queue.backend: postgres`
        : `another serve${pid} holds data_dir "${dataDir}" (lock ${path}): one serve per ` +
          `SQLite data_dir; stop that one first (several nodes share a queue with ` +
          `queue.backend: postgres)`,
      path,
      other.pid,
      other.what === "queue migrate" ? "queue migrate" : "serve",
    );
  }
  try {
    // For the message above and for operators (`cat serve.lock`); the lock is what counts.
    await file.truncate(0);
    const line = holder === "serve" ? `${Deno.pid}` : `${Deno.pid} ${holder}`;
    await file.write(new TextEncoder().encode(`${line}\n`));
  } catch {
    // The PID is only a hint: the lock is held either way.
  }
  let isHeld = true;
  return {
    release: () => {
      if (!isHeld) return;
      isHeld = false;
      // Closing the only descriptor of the file releases its flock.
      file.close();
    },
  };
}

/** What the holder wrote into the lock file (`PID` or `PID HOLDER`), if it has written it yet. */
async function holderOf(file: Deno.FsFile): Promise<{ pid?: number; what?: string }> {
  try {
    const buf = new Uint8Array(64);
    const n = await file.read(buf);
    const text = new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim();
    const m = /^(\d+)(?: (.+))?$/.exec(text);
    if (m === null) return {};
    return m[2] === undefined ? { pid: Number(m[1]) } : { pid: Number(m[1]), what: m[2] };
  } catch {
    return {};
  }
}
