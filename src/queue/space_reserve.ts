/**
 * A reserve of disk space in the data directory (`data_dir/space_reserve`, SPACE_RESERVE_BYTES
 * of zeros), kept so that a full disk never stops the queue from being drained: in WAL mode even
 * a DELETE needs room (its frames), and so do an ATRN claim's lease row, a settlement, the
 * release of a dead process's leases and the -shm file of a first open. When one of those fails
 * for lack of room, the store gives the reserve back (truncates the file) and tries once more.
 *
 * While the reserve is given back, new mail is refused with 452 4.3.1 before anything is written
 * (Postfix's `queue_minfree` idea, without statfs): mail must not eat the room the drains need.
 * The reserve is put back once there is room for it and as much again (RESTORE_MARGIN_BYTES),
 * tried when a message comes and at each maintenance pass: at most once per RESTORE_RETRY_MS,
 * that wait doubling after each failed try up to RESTORE_RETRY_MAX_MS (a try writes the reserve
 * and its margin on the event loop: ~200 ms on ext4 with 15 MiB free).
 * Only `serve` keeps one; a tool that deletes mail (`queue delete`) may give it back, which serve
 * notices at its next maintenance pass.
 */
import { join } from "../posix_path.ts";
import { errorText } from "../errors.ts";
import { type Logger, NULL_LOGGER } from "../observe/log.ts";

/** Name of the reserve file inside the data directory. */
export const SPACE_RESERVE_FILE = "space_reserve";
/** Size of the reserve. */
export const SPACE_RESERVE_BYTES = 8 * 1024 * 1024;
/** Free room asked beyond the reserve before it is put back (and mail taken again). */
export const RESTORE_MARGIN_BYTES = SPACE_RESERVE_BYTES;
/** How soon a message that finds the reserve spent may try to put it back. */
export const RESTORE_RETRY_MS = 1_000;
/** The longest wait between two such tries (it doubles after each failed one). */
export const RESTORE_RETRY_MAX_MS = 30_000;

const ZEROS = new Uint8Array(64 * 1024);

/** SQLite's extended code for a -shm file it could not grow (SQLITE_IOERR_SHMSIZE). */
const SQLITE_IOERR_SHMSIZE = 4874;
/** One page of a -shm file: what a probe of the room left writes. */
const PROBE_BYTES = 32 * 1024;

/**
 * A failure that room on the disk may cure: SQLITE_FULL, ENOSPC, EDQUOT, or a -shm file SQLite
 * could not grow (SQLITE_IOERR_SHMSIZE). Other I/O errors (a failing disk: IOERR_READ, _WRITE,
 * _FSYNC) are not: they must not spend the reserve, nor be logged as space. node:sqlite gives
 * the extended code on some errors only (an `exec` says "disk I/O error" and no more): then
 * `dir` (data_dir) decides, by writing one -shm page's worth beside the database.
 */
export function mayBeFull(err: unknown, dir: string | undefined): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { errcode?: unknown; code?: unknown; message?: unknown };
  if (e.code === "ENOSPC" || e.code === "EDQUOT" || e.code === "SQLITE_FULL") return true;
  const message = typeof e.message === "string" ? e.message : "";
  if (typeof e.errcode === "number") {
    return (e.errcode & 0xff) === 13 || e.errcode === SQLITE_IOERR_SHMSIZE;
  }
  if (/SQLITE_FULL|database or disk is full|No space left|quota exceeded/i.test(message)) {
    return true;
  }
  return /disk I\/O error/i.test(message) && dir !== undefined && hasNoRoom(dir);
}

/** True when `dir`'s file system refuses one -shm page for lack of room (or quota). */
function hasNoRoom(dir: string): boolean {
  const probe = join(dir, `${SPACE_RESERVE_FILE}.probe`);
  try {
    Deno.writeFileSync(probe, new Uint8Array(PROBE_BYTES), { mode: 0o600 });
    return false;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return code === "ENOSPC" || code === "EDQUOT";
  } finally {
    try {
      Deno.removeSync(probe);
    } catch {
      // Not made.
    }
  }
}

/** The error `begin` refuses new mail with while the reserve is spent (a 452 4.3.1). */
export class SpaceShortError extends Error {
  readonly code = "ENOSPC";
  constructor() {
    super("No space left: the queue's space reserve is spent, so new mail waits for room");
  }
}

/** The reserve of one data directory. */
export class SpaceReserve {
  readonly #dir: string;
  readonly #path: string;
  readonly #bytes: number;
  readonly #margin: number;
  readonly #log: Logger;
  readonly #now: () => number;
  #isKept = false;
  /** Given back, or short at start: its return is logged. */
  #wasSpent = false;
  #lastTry = Number.NEGATIVE_INFINITY;
  #retryMs = RESTORE_RETRY_MS;
  #onChange: ((isKept: boolean) => void) | undefined;

  constructor(
    dataDir: string,
    opts: { log: Logger; bytes?: number; margin?: number; now?: () => number },
  ) {
    this.#dir = dataDir;
    this.#path = join(dataDir, SPACE_RESERVE_FILE);
    this.#bytes = opts.bytes ?? SPACE_RESERVE_BYTES;
    this.#margin = opts.margin ?? RESTORE_MARGIN_BYTES;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
  }

  /** At start: a whole reserve file left by the last run is kept (cut to size); else one is made. */
  start(): void {
    try {
      if (Deno.statSync(this.#path).size >= this.#bytes) {
        Deno.truncateSync(this.#path, this.#bytes);
        this.#isKept = true;
        return;
      }
    } catch {
      // None yet.
    }
    this.#lastTry = this.#now();
    if (!this.#restore()) {
      this.#wasSpent = true;
      this.#log.warn("space_reserve_short", {
        bytes: this.#bytes + this.#margin,
        action: "new mail is refused with 452 4.3.1 until that much is free in data_dir",
      });
    }
  }

  /**
   * For a tool beside serve (`queue delete`): serve's reserve file, given back if a write of the
   * tool finds no room; never put back (serve does).
   */
  static ofTool(dataDir: string): SpaceReserve {
    const reserve = new SpaceReserve(dataDir, { log: NULL_LOGGER });
    try {
      reserve.#isKept = Deno.statSync(reserve.#path).size > 0;
    } catch {
      // None: nothing to give back.
    }
    return reserve;
  }

  /** `queue.space_reserve: 0`: a reserve file of an earlier run is no longer kept. */
  static remove(dataDir: string): void {
    try {
      Deno.removeSync(join(dataDir, SPACE_RESERVE_FILE));
    } catch {
      // None.
    }
  }

  /** Calls `fn` with `isKept` now and each time the reserve is given back or put back. */
  watch(fn: (isKept: boolean) => void): void {
    this.#onChange = fn;
    fn(this.#isKept);
  }

  /** Whether the reserve is in place. */
  get isKept(): boolean {
    return this.#isKept;
  }

  /**
   * Whether new mail may be written: the reserve is in place, or was put back now (tried at most
   * once per RESTORE_RETRY_MS, twice as long after each failed try, up to RESTORE_RETRY_MAX_MS).
   */
  allowsMail(): boolean {
    if (this.#isKept) return true;
    const now = this.#now();
    if (now - this.#lastTry < this.#retryMs) return false;
    this.#lastTry = now;
    if (this.#restore()) return true;
    this.#retryMs = Math.min(this.#retryMs * 2, RESTORE_RETRY_MAX_MS);
    return false;
  }

  /** Tries to put the reserve back (maintenance); true if it is in place. */
  restore(): boolean {
    if (this.#isKept && this.#isWhole()) return true;
    this.#lastTry = this.#now();
    return this.#restore();
  }

  /** Whether `err` is a lack of room (`mayBeFull` in this data directory). */
  isFull(err: unknown): boolean {
    return mayBeFull(err, this.#dir);
  }

  /**
   * Runs `fn`; when it fails for lack of room and the reserve is in place, gives the reserve back
   * and runs `fn` once more. `what` names the write in the log line.
   */
  retry<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (!this.isFull(err) || !this.giveBack(what, err)) throw err;
    }
    return fn();
  }

  /** Gives the reserve back; false if it was not in place (nothing freed). */
  giveBack(what: string, cause: unknown): boolean {
    if (!this.#isKept) return false;
    this.#isKept = false;
    this.#wasSpent = true;
    this.#retryMs = RESTORE_RETRY_MS;
    this.#onChange?.(false);
    try {
      Deno.truncateSync(this.#path, 0);
    } catch (err) {
      this.#log.error("space_reserve_failed", { error: errorText(err) });
      return false;
    }
    this.#log.warn("space_reserve_used", {
      for: what,
      cause: errorText(cause),
      bytes: this.#bytes,
      action: "new mail is refused with 452 4.3.1 until there is room again",
    });
    return true;
  }

  /** False (and noted) when a tool gave the reserve back (`ofTool`) since it was kept. */
  #isWhole(): boolean {
    let size = 0;
    try {
      size = Deno.statSync(this.#path).size;
    } catch {
      // Removed: as good as given back.
    }
    if (size >= this.#bytes) return true;
    this.#isKept = false;
    this.#wasSpent = true;
    this.#retryMs = RESTORE_RETRY_MS;
    this.#onChange?.(false);
    this.#log.warn("space_reserve_used", {
      for: "another process (queue delete)",
      bytes: this.#bytes,
      action: "new mail is refused with 452 4.3.1 until there is room again",
    });
    return false;
  }

  /** Writes the reserve and the margin, keeps the reserve; on failure leaves an empty file. */
  #restore(): boolean {
    let file: Deno.FsFile | undefined;
    try {
      file = Deno.openSync(this.#path, { write: true, create: true, mode: 0o600 });
      let size = file.statSync().size;
      file.seekSync(size, Deno.SeekMode.Start);
      const want = this.#bytes + this.#margin;
      while (size < want) {
        size += file.writeSync(ZEROS.subarray(0, Math.min(ZEROS.length, want - size)));
      }
      file.truncateSync(this.#bytes);
    } catch {
      try {
        file?.truncateSync(0);
      } catch {
        // Nothing more to give back.
      }
      return false;
    } finally {
      file?.close();
    }
    this.#isKept = true;
    this.#retryMs = RESTORE_RETRY_MS;
    this.#onChange?.(true);
    if (this.#wasSpent) this.#log.info("space_reserve_restored", { bytes: this.#bytes });
    this.#wasSpent = false;
    return true;
  }
}
