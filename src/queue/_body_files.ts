/**
 * Bodies of a chunk or more (64 KiB: every body not kept in its message's row) in files in
 * `data_dir/bodies/`, not in `message_chunks` (schema step 8, issue 13). In SQLite each 100 KB
 * body was written twice on the event loop, ~25 pages to the WAL and the same pages again into
 * the database file by the checkpoint; a file is written once, and its sync runs on a thread.
 * The message row (`body_file`) is inserted only once the body's data is on disk, so a row never
 * points at a body that a crash could take away; a crash before that leaves bytes no row names.
 *
 * Since step 9 bodies written one after the other share a segment file (_body_segment.ts), up to
 * SEGMENT_BYTES: a file of its own per body cost an inode per message. Only bodies of one key
 * share (one ATRN domain, else the mixed key), and a big body is alone (see _body_segment.ts for
 * the bound). Each writer holds its segment from its first byte to the end of its sync, so bodies
 * written at once go to different segments. A segment goes once no row names any of its bodies
 * and no writer holds it (closed first if still open): this process counts them (the rows at
 * start, then each body handed out, less each dropped or deleted one). Rows of step 8 name a
 * whole file: read and removed as before. Segments are not compacted: a live body keeps its
 * whole segment (copying live bodies out of sparse segments in maintenance is left for later).
 *
 * New files are made ahead of need (_body_spares.ts), SPARE_FILES at a time, on threads, and
 * their names synced with one sync of the folder before any is handed out (creating a file on the
 * event loop took ~0.4 ms). A file has a name of its own, not a message's id (chosen before the
 * body arrives).
 *
 * Removal goes the other way: a body is gone only once the deletion of its row is on disk. A
 * TEMP trigger notes each deleted row with a body file in `temp.gone_bodies` inside the very
 * transaction that deletes it (a rolled-back deletion notes nothing); `takeGone` syncs the WAL
 * and hands them to `unlink` (maintenance, close). A crash forgets the notes: files no row names
 * are then removed at the next start like other orphans.
 *
 * The first failed sync of the folder is final, as for the WAL (_sync_waiters.ts): Linux reports a
 * failed write-back once per open file, so a later sync of the same handle could succeed on an
 * entry never written. From then on no body goes to a file until serve restarts (such messages
 * are refused with 451). A failed sync of a body fails only that message (and its segment takes
 * no more bodies).
 *
 * Only the process that receives mail (serve, which also removes orphans and counts the bodies
 * of each segment at start) writes body files and removes segments: a file another process was
 * still writing would have no row yet, and look orphaned. Bodies of messages another process
 * deleted (`queue delete`) are noted by it and counted off at serve's next pass (_body_elsewhere.ts).
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { dirname, join } from "../posix_path.ts";
import { SpareFiles } from "./_body_spares.ts";
import { errorText } from "../errors.ts";
import type { Logger } from "../observe/log.ts";
import { mainFile } from "./db.ts";
import {
  emptyBodiesGoneElsewhere,
  type Exclusive,
  noteBodiesGoneHere,
  takeBodiesGoneElsewhere,
} from "./_body_elsewhere.ts";
import { isQueueId } from "./id.ts";
import {
  BIG_BODY_BYTES,
  BodyFileWriter,
  type BodySync,
  MIXED_KEY,
  parseBodyName,
  readBody,
  Segment,
  SEGMENT_BYTES,
  type SegmentOwner,
} from "./_body_segment.ts";

export { type BodyFileWriter, type BodySync, SEGMENT_BYTES };

/** Folder of the body files, inside the data directory. */
export const BODY_DIR = "bodies";

const plainSync: BodySync = (_what, run) => run();

/** Options of `BodyFiles`. */
export interface BodyFilesOptions {
  /** Default: runs `run`. */
  readonly sync?: BodySync;
  /** Bytes per read of a body file (what a reader holds of a body at a time); default 64 KiB. */
  readonly readBytes?: number;
  /** A segment takes no more bodies once it holds this many bytes; default SEGMENT_BYTES. */
  readonly segmentBytes?: number;
  /** A body this long is alone in its segment; default BIG_BODY_BYTES. */
  readonly bigBytes?: number;
}

/**
 * Segments kept open for the next bodies once their writers are done (of all keys): as many as
 * bodies are written at once, up to this; past it the one unused longest is closed.
 */
export const OPEN_SEGMENTS = 16;

/** The body files of one store. */
export class BodyFiles {
  readonly dir: string;
  readonly #log: Logger;
  readonly #db: DatabaseSync;
  readonly #gone: StatementSync;
  readonly #forget: StatementSync;
  readonly #sync: BodySync;
  readonly #readBytes: number;
  readonly #segmentBytes: number;
  readonly #spares: SpareFiles;
  /** This process's segments until their file goes (open or retired). */
  readonly #segments = new Map<string, Segment>();
  /** Segments open for the next body, no writer on them, each with a body named: oldest first. */
  readonly #free: Segment[] = [];
  /**
   * Bodies per segment file: those named by a row, as counted at the start (removeOrphans), and
   * those handed out since and not gone. Known only in the process that receives mail.
   */
  readonly #refs = new Map<string, number>();
  #isCounted = false;
  /** The notes of bodies deleted by other processes are taken (their table emptied at start). */
  #takesElsewhere = false;
  readonly #owner: SegmentOwner;
  /**
   * Whether the last body declared big (SIZE=) that ended was big: only then does the next one
   * start a new segment. One declared big that ended short (or was dropped) makes the next ones
   * share like any body (moved if they do grow big), until one of them is big: a sender declaring
   * 1 MiB for 64 KiB bodies would otherwise cost a segment file (an inode) per body.
   */
  #trustsSize = true;
  #isClosed = false;

  /** Body files for the database `db` if it is a file (else undefined: bodies stay in SQLite). */
  static open(db: DatabaseSync, log: Logger, opts: BodyFilesOptions = {}): BodyFiles | undefined {
    const file = mainFile(db);
    if (file === "") return undefined;
    const dir = join(dirname(file), BODY_DIR);
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return new BodyFiles(db, dir, log, opts);
  }

  private constructor(db: DatabaseSync, dir: string, log: Logger, opts: BodyFilesOptions) {
    this.dir = dir;
    this.#readBytes = opts.readBytes ?? 64 * 1024;
    this.#segmentBytes = opts.segmentBytes ?? SEGMENT_BYTES;
    this.#sync = opts.sync ?? plainSync;
    this.#db = db;
    this.#log = log;
    this.#owner = {
      release: (segment) => this.#release(segment),
      // A refused body's file goes at once (rare: a failed write, sync or COMMIT).
      drop: (segment) => void this.#remove(this.#drop([segment]), true),
      sync: this.#sync,
      bigBytes: opts.bigBytes ?? BIG_BODY_BYTES,
      declared: (isBig) => this.#trustsSize = isBig,
    };
    this.#spares = new SpareFiles(dir, log, this.#sync);
    // After `temp_store` is set (changing it drops temporary tables and triggers).
    db.exec(
      "CREATE TEMP TABLE IF NOT EXISTS gone_bodies (name TEXT PRIMARY KEY);" +
        "CREATE TEMP TRIGGER IF NOT EXISTS messages_body_file_gone AFTER DELETE ON main.messages " +
        "WHEN OLD.body_file IS NOT NULL BEGIN " +
        "INSERT OR IGNORE INTO temp.gone_bodies (name) VALUES (OLD.body_file); END;",
    );
    this.#gone = db.prepare("SELECT name FROM temp.gone_bodies");
    this.#forget = db.prepare("DELETE FROM temp.gone_bodies WHERE name = ?");
  }

  /** Set after a failed sync of the folder: no body goes to a file until restart (see above). */
  get broken(): Error | undefined {
    return this.#spares.broken;
  }

  /**
   * Where one body of `key` (`segmentKey`) goes: the end of an open segment of that key no other
   * body is written to, or a new one (a spare, its name already on disk). A body whose sender
   * declared it big (`declaredSize`, SMTP SIZE=) starts a new one, so it is not moved there later,
   * unless the last body declared big ended short (`#trustsSize`). Rejects if none can be made.
   */
  take(key: string = MIXED_KEY, declaredSize = 0): Promise<BodyFileWriter> {
    const declared = declaredSize >= this.#owner.bigBytes;
    return this.#take(key, !declared || !this.#trustsSize, declared);
  }

  /**
   * `from` outgrew the place it started in (`outgrows`): its bytes so far go to a new segment of
   * its own, where it goes on; `from` is dropped (its bytes stay, unnamed, in the old segment).
   */
  async move(from: BodyFileWriter): Promise<BodyFileWriter> {
    let to: BodyFileWriter | undefined;
    try {
      to = await this.#take(from.key, false, from.declared);
      await from.copyTo(to);
      return to;
    } catch (err) {
      to?.discard();
      throw err;
    } finally {
      from.discard();
    }
  }

  async #take(key: string, shared: boolean, declared = false): Promise<BodyFileWriter> {
    for (;;) {
      const broken = this.#spares.broken;
      if (broken !== undefined) throw broken;
      if (this.#isClosed) throw new Error("queue body files used after close");
      let segment: Segment | undefined;
      const at = shared ? this.#free.findLastIndex((s) => s.key === key) : -1;
      if (at >= 0) segment = this.#free.splice(at, 1)[0];
      if (segment === undefined) {
        const spare = this.#spares.pop();
        if (spare !== undefined) {
          segment = new Segment(spare.name, spare.path, spare.file, key);
          this.#segments.set(segment.name, segment);
        }
      }
      if (segment !== undefined) {
        segment.held = true;
        this.#refs.set(segment.name, (this.#refs.get(segment.name) ?? 0) + 1);
        return new BodyFileWriter(segment, this.#owner, declared);
      }
      await this.#spares.refill();
    }
  }

  /**
   * The body a row names `name`, `readBytes` at a time; throws when its file does not hold it
   * whole (_body_segment.ts).
   */
  read(id: string, name: string, size: number): Generator<Uint8Array> {
    return readBody(this.dir, this.#readBytes, id, name, size);
  }

  /**
   * The bodies of deleted messages, once their deletion is on disk: `syncAll` commits and syncs
   * everything written so far (it throws after a failed sync: nothing is taken then). Read after
   * it: a deletion whose COMMIT failed was rolled back with its note, and its row names its body
   * again. They are forgotten here: a crash before `unlink` leaves their files as orphans for the
   * next start.
   */
  takeGone(syncAll: () => void): string[] {
    if (this.#goneNames().length === 0) return [];
    syncAll();
    const names = this.#goneNames();
    for (const name of names) this.#forget.run(name);
    return names;
  }

  /**
   * In the open transaction: the row naming `name`, deleted there, was inserted in it too (a
   * writer's undo), so its deletion frees nothing; its writer drops the body instead.
   */
  takeBackGone(name: string): void {
    this.#forget.run(name);
  }

  /**
   * Unlinks the files of bodies taken by `takeGone`, one at a time off the loop (an unlink took
   * ~0.17 ms of CPU: a drained burst must not hold the loop); `now`: on this thread (close). A
   * segment goes with the last of its bodies, once it takes no more, and only in the process
   * that counted them (serve); in another it stays for serve's next start. How many went.
   */
  async unlink(names: readonly string[], now = false): Promise<number> {
    const files: string[] = [];
    const segments: string[] = [];
    for (const name of names) {
      const place = parseBodyName(name);
      if (place === undefined) continue;
      if (place.offset === undefined) files.push(place.file);
      else if (this.#isCounted) segments.push(place.file);
    }
    return await this.#remove([...files, ...this.#drop(segments)], now);
  }

  /** In a process that does not count the bodies (not serve) and writes: note those its deletions free. */
  noteDeletionsHere(): void {
    noteBodiesGoneHere(this.#db);
  }

  /**
   * Removes files no message row names (a crash while receiving, or before removeGone ran), and
   * counts the bodies of each segment. Only in the process that receives mail, once, before it
   * receives any (see above). `exclusive`: the count runs in a transaction that also empties the
   * notes of other processes' deletions, which are taken from then on (_body_elsewhere.ts).
   */
  removeOrphans(exclusive?: Exclusive): number {
    const named = new Set<string>();
    for (const row of this.#namedRows(exclusive)) {
      const place = typeof row.body_file === "string" ? parseBodyName(row.body_file) : undefined;
      if (place === undefined) continue;
      named.add(place.file);
      if (place.offset !== undefined) {
        this.#refs.set(place.file, (this.#refs.get(place.file) ?? 0) + 1);
      }
    }
    this.#isCounted = true;
    let removed = 0;
    for (const entry of Deno.readDirSync(this.dir)) {
      if (named.has(entry.name)) continue;
      try {
        Deno.removeSync(join(this.dir, entry.name), { recursive: true });
        removed++;
      } catch (err) {
        this.#log.warn("queue_body_remove_failed", { file: entry.name, reason: errorText(err) });
      }
    }
    if (removed > 0) this.#log.info("queue_orphan_bodies_removed", { files: removed });
    return removed;
  }

  /**
   * Maintenance: the files of messages deleted so far go, off the loop (see takeGone), with those
   * of messages other processes deleted (`exclusive`: to take their notes off).
   */
  sweep(syncAll: () => void, exclusive?: Exclusive): void {
    const names = this.takeGone(syncAll);
    const elsewhere = this.#takesElsewhere && exclusive !== undefined
      ? takeBodiesGoneElsewhere(this.#db, exclusive)
      : [];
    if (names.length + elsewhere.length > 0) void this.unlink([...names, ...elsewhere]);
  }

  /**
   * After the store's last sync: removes the files of deleted messages, the spares and the
   * segments no row names (no row is written any more), and closes the folder.
   */
  close(): void {
    if (this.#isClosed) return;
    void this.unlink(this.takeGone(() => {}), true);
    this.#isClosed = true;
    const empty: string[] = [];
    for (const segment of this.#segments.values()) {
      segment.close();
      if ((this.#refs.get(segment.name) ?? 0) === 0) empty.push(segment.name);
    }
    this.#free.length = 0;
    void this.#remove(empty, true);
    this.#spares.close();
  }

  /**
   * A writer is done with `segment`: it takes the next body of its key, or is closed (full,
   * retired). Past OPEN_SEGMENTS the free one unused longest is closed (it goes with its last
   * body). One none of whose bodies is named any more goes now.
   */
  #release(segment: Segment): void {
    segment.held = false;
    if (!this.#refs.has(segment.name)) {
      // Every body of it went already (dropped while written): nothing names it.
      segment.close();
      this.#segments.delete(segment.name);
      return void this.#remove([segment.name], true);
    }
    const open = !segment.retired && !this.#isClosed && segment.end < this.#segmentBytes;
    if (!open) return segment.close();
    this.#free.push(segment);
    if (this.#free.length > OPEN_SEGMENTS) this.#free.shift()?.close();
  }

  /**
   * One body fewer in each of `segments` (a name once per body); returns those with none left
   * and no writer on them, closed and forgotten here: the caller removes them (after the
   * deletions of their rows are on disk, or for bodies no row named). A segment whose bodies were
   * never counted here is left alone; one held goes when its writer releases it.
   */
  #drop(segments: readonly string[]): string[] {
    const empty: string[] = [];
    for (const name of segments) {
      const left = (this.#refs.get(name) ?? 0) - 1;
      if (left < 0) continue;
      if (left > 0) {
        this.#refs.set(name, left);
        continue;
      }
      this.#refs.delete(name);
      const segment = this.#segments.get(name);
      if (segment !== undefined) {
        if (segment.held) continue;
        // Open for more bodies: taken out at once (no take() can get it), closed, removed.
        const at = this.#free.indexOf(segment);
        if (at >= 0) this.#free.splice(at, 1);
        segment.close();
        this.#segments.delete(name);
      }
      empty.push(name);
    }
    return empty;
  }

  /** Unlinks files of the folder (off the loop unless `now`); how many went. */
  async #remove(files: readonly string[], now: boolean): Promise<number> {
    let removed = 0;
    for (const name of files) {
      if (!isQueueId(name)) continue;
      try {
        const path = join(this.dir, name);
        if (now) Deno.removeSync(path);
        else await Deno.remove(path);
        removed++;
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) {
          this.#log.warn("queue_body_remove_failed", { file: name, reason: errorText(err) });
        }
      }
    }
    return removed;
  }

  /** The rows naming a body; with `exclusive`, read as the notes of elsewhere are emptied. */
  #namedRows(exclusive: Exclusive | undefined): Record<string, unknown>[] {
    const select = () =>
      this.#db.prepare("SELECT body_file FROM messages WHERE body_file NOT NULL").all();
    if (exclusive === undefined) return select();
    try {
      const rows = exclusive("body count", () => {
        emptyBodiesGoneElsewhere(this.#db);
        return select();
      });
      this.#takesElsewhere = true;
      return rows;
    } catch (err) {
      // A full disk even after the reserve: those bodies wait for the next start, as before.
      this.#log.warn("queue_bodies_elsewhere_off", { error: errorText(err) });
      return select();
    }
  }

  #goneNames(): string[] {
    const names: string[] = [];
    for (const row of this.#gone.all()) {
      if (typeof row.name === "string") names.push(row.name);
    }
    return names;
  }
}
