/**
 * Segment files of the body folder (_body_files.ts, schema step 9): the bodies of several
 * messages, one after the other, in one file. A file of its own per body cost the kernel an
 * inode for every message (0.23-1.2 ms of CPU each on the bench machine's ext4, on a thread,
 * more with more inodes freed in the last minutes), and the first sync of a new file also syncs
 * its folder's entry; a segment is made once for many bodies, and a body's sync only writes its
 * data and the file's new size.
 *
 * One writer at a time appends to a segment (it holds it from its body's first byte to the end of
 * its sync), so each body is contiguous: its message row names it `<segment>@<offset>` and its
 * length is the message's size. A body that is dropped before its row is written leaves its
 * bytes where they are, unnamed; the next body goes after them. The whole file goes once no row
 * names any of its bodies and it takes no more (see `BodyFiles`).
 */
import { isQueueId } from "./id.ts";

/** Runs one sync of a body file ("data") or of their folder; tests wrap it to hold or fail it. */
export type BodySync = (
  what: "data" | "folder" | "parent",
  run: () => Promise<void>,
) => Promise<void>;

/** Where a body is: a whole file (`offset` undefined, as written before step 9), or a part of one. */
export interface BodyPlace {
  readonly file: string;
  readonly offset: number | undefined;
}

/**
 * A segment takes no more bodies once it holds this many bytes (~40 bodies of 100 KB; the body
 * that passes it still goes in whole): its inode is paid once for them, and one message held for
 * an offline customer keeps at most about this much disk of bodies long gone.
 */
export const SEGMENT_BYTES = 4 * 1024 * 1024;

/** `<segment>@<offset>` of a body in a segment; a name without `@` is a whole file. */
const AT = "@";

/** The name a row gives a body at `offset` in `segment`. */
export function bodyName(segment: string, offset: number): string {
  return `${segment}${AT}${offset}`;
}

/** Where the body a row names is; undefined for a name no body file has (never a path). */
export function parseBodyName(name: string): BodyPlace | undefined {
  const at = name.indexOf(AT);
  if (at < 0) return isQueueId(name) ? { file: name, offset: undefined } : undefined;
  const file = name.slice(0, at);
  const digits = name.slice(at + 1);
  if (!isQueueId(file) || !/^[0-9]{1,15}$/.test(digits)) return undefined;
  return { file, offset: Number(digits) };
}

/** One segment file of this process, open for appending. */
export class Segment {
  readonly name: string;
  readonly path: string;
  readonly file: Deno.FsFile;
  /** Where the next body starts (the bytes written so far). */
  end = 0;
  /** Takes no more bodies: full, after a failed write or sync, or its store closed. */
  retired = false;
  /** A writer appends to it now. */
  held = false;
  #isClosed = false;

  constructor(name: string, path: string, file: Deno.FsFile) {
    this.name = name;
    this.path = path;
    this.file = file;
  }

  /** Closes the file (it takes no more bodies). */
  close(): void {
    this.retired = true;
    if (this.#isClosed) return;
    this.#isClosed = true;
    try {
      this.file.close();
    } catch {
      // Closed already.
    }
  }
}

/** What a writer tells the body files of its segment. */
export interface SegmentOwner {
  /** The writer is done appending (its body synced, or dropped). */
  release(segment: Segment): void;
  /** The body is dropped: no row names it. */
  drop(segment: string): void;
  readonly sync: BodySync;
}

/** One body being appended to its segment. */
export class BodyFileWriter {
  /** What the message row's `body_file` names (`<segment>@<offset>`). */
  readonly name: string;
  readonly #segment: Segment;
  readonly #owner: SegmentOwner;
  #holds = true;
  #dropped = false;

  constructor(segment: Segment, owner: SegmentOwner) {
    this.#segment = segment;
    this.#owner = owner;
    this.name = bodyName(segment.name, segment.end);
  }

  /**
   * Appends `bytes` (copied into the page cache before this returns). On the loop: handing each
   * write to a thread cost more in wake-ups than the copy (paired 1.05× against 1.28× at
   * 10 × 100 KB, bench/ab_ingest.ts). A failed write retires the segment (where the next body
   * would start is not known).
   */
  write(bytes: Uint8Array): void {
    if (!this.#holds) throw new Error("queue body file written after its end");
    const segment = this.#segment;
    try {
      let offset = 0;
      while (offset < bytes.length) {
        const n = segment.file.writeSync(bytes.subarray(offset));
        offset += n;
        segment.end += n;
      }
    } catch (err) {
      segment.retired = true;
      throw err;
    }
  }

  /**
   * The body's data on disk (off the event loop; the segment's name was synced before it was
   * handed out). A failed sync retires the segment: Linux reports a failed write-back once per
   * open file, so a later sync could succeed over a later body's lost pages.
   */
  async finish(): Promise<void> {
    const segment = this.#segment;
    try {
      await this.#owner.sync("data", () => segment.file.syncData());
    } catch (err) {
      segment.retired = true;
      throw err;
    } finally {
      this.close();
    }
  }

  /** No row names this body (dropped, or its row's COMMIT rolled back). */
  discard(): void {
    this.close();
    if (this.#dropped) return;
    this.#dropped = true;
    this.#owner.drop(this.#segment.name);
  }

  /** Done appending: the segment takes the next body. */
  close(): void {
    if (!this.#holds) return;
    this.#holds = false;
    this.#owner.release(this.#segment);
  }
}
