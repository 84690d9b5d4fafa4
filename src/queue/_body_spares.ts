/**
 * Empty segment files of the body folder made ahead of need (_body_files.ts), SPARE_FILES at a
 * time, on threads, their names synced with one sync of the folder before any is handed out
 * (creating a file on the event loop took ~0.4 ms). The first failed sync of the folder is final
 * (`broken`, see _body_files.ts).
 */
import { dirname, join } from "../posix_path.ts";
import { errorText } from "../errors.ts";
import type { Logger } from "../observe/log.ts";
import { newQueueId } from "./id.ts";
import type { BodySync } from "./_body_segment.ts";

/** Empty files kept ready (their names on disk); more are made when half are taken. */
export const SPARE_FILES = 4;

/** An empty file made ahead, its name synced. */
export interface Spare {
  readonly name: string;
  readonly path: string;
  readonly file: Deno.FsFile;
}

/** The spares of one body folder. */
export class SpareFiles {
  readonly #dir: string;
  readonly #dirHandle: Deno.FsFile;
  readonly #log: Logger;
  readonly #sync: BodySync;
  readonly #spares: Spare[] = [];
  /** Spares being made now. */
  #filling: Promise<void> | undefined;
  /** The data directory's entry of the folder is on disk (synced once, before the first file). */
  #parentSynced = false;
  #broken: Error | undefined;
  #isClosed = false;

  constructor(dir: string, log: Logger, sync: BodySync) {
    this.#dir = dir;
    this.#log = log;
    this.#sync = sync;
    this.#dirHandle = Deno.openSync(dir, { read: true });
  }

  /** Set after a failed sync of the folder: no body goes to a file until restart. */
  get broken(): Error | undefined {
    return this.#broken;
  }

  /** A spare, if one is ready (more are made when half are taken). */
  pop(): Spare | undefined {
    const spare = this.#spares.pop();
    if (spare !== undefined && this.#spares.length < SPARE_FILES / 2) {
      this.refill().catch(() => {});
    }
    return spare;
  }

  /** Makes spares up to SPARE_FILES (one run at a time), then syncs their names. */
  refill(): Promise<void> {
    this.#filling ??= this.#fill().finally(() => {
      this.#filling = undefined;
    });
    return this.#filling;
  }

  /** Removes the spares and closes the folder. */
  close(): void {
    this.#isClosed = true;
    for (const spare of this.#spares.splice(0)) discard(spare);
    try {
      this.#dirHandle.close();
    } catch {
      // Already closed.
    }
  }

  async #fill(): Promise<void> {
    const made: Spare[] = [];
    try {
      for (let i = this.#spares.length; i < SPARE_FILES; i++) {
        const name = newQueueId(Date.now());
        const path = join(this.#dir, name);
        const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
        made.push({ name, path, file });
      }
      // A folder made by this start (the first after the upgrade) needs its own name on disk
      // too, before a row can name a file in it.
      if (!this.#parentSynced) {
        await this.#syncFolder("parent", dirname(this.#dir));
        this.#parentSynced = true;
      }
      await this.#syncFolder("folder", this.#dir);
    } catch (err) {
      for (const spare of made) discard(spare);
      this.#log.warn("queue_body_files_failed", { reason: errorText(err) });
      throw err;
    }
    if (this.#isClosed) {
      for (const spare of made) discard(spare);
      return;
    }
    this.#spares.push(...made);
  }

  async #syncFolder(what: "folder" | "parent", path: string): Promise<void> {
    if (this.#broken !== undefined) throw this.#broken;
    try {
      await this.#sync(what, async () => {
        if (what === "folder") return await this.#dirHandle.sync();
        const parent = await Deno.open(path, { read: true });
        try {
          await parent.sync();
        } finally {
          parent.close();
        }
      });
    } catch (cause) {
      if (this.#broken === undefined) {
        this.#broken = new Error(
          `Cannot sync the queue's body folder "${path}": ${errorText(cause)}; ` +
            "every later message of 64 KiB or more is refused until serve is restarted",
        );
        this.#log.error("queue_sync_failed", {
          error: this.#broken.message,
          action: "restart serve: until then messages of 64 KiB or more are refused with " +
            "451 4.3.0, and /healthz answers 503",
        });
      }
      throw this.#broken;
    }
  }
}

function discard(spare: Spare): void {
  try {
    spare.file.close();
    Deno.removeSync(spare.path);
  } catch {
    // Gone already, or left as an orphan for the next start.
  }
}
