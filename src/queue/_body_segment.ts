/**
 * Segment files of the body folder (_body_files.ts, schema step 9): the bodies of several
 * messages, one after the other, in one file. A file of its own per body cost the kernel an
 * inode for every message (0.23-1.2 ms of CPU each on the bench machine's ext4, on a thread,
 * more with more inodes freed in the last minutes), and the first sync of a new file also syncs
 * its folder's entry; a segment is made once for many bodies, and a body's sync only writes its
 * data and the file's new size.
 *
 * One writer at a time appends to a segment (it holds it from its body's first byte to the end of
 * its sync), so each body is contiguous: its message row names it `<segment>@<offset>+<length>`
 * (schema step 10; `<segment>@<offset>` before it, whose length is only the row's `size`), and
 * a reader checks the name's length against the row's `size` before the first byte: a `size`
 * lowered or raised into the next body would otherwise send a body cut short or with the next
 * message's bytes. A body that is dropped before its row is written leaves its
 * bytes where they are, unnamed; the next body goes after them. The whole file goes once no row
 * names any of its bodies (see `BodyFiles`).
 *
 * What a segment keeps on disk is bounded (review rev13a): bodies share a segment only with
 * bodies of the same key (`segmentKey`: one ATRN domain, collected together), and a body that
 * reaches BIG_BODY_BYTES is alone in its segment: one its sender declared that big (SMTP SIZE=)
 * starts a new segment, one that grows past it after other bodies is moved (its bytes so far
 * copied) to a new segment of its own, and a segment takes no body after a big one. So a segment
 * is either one big body alone, or bodies under BIG_BODY_BYTES each that start before
 * SEGMENT_BYTES: under SEGMENT_BYTES + BIG_BODY_BYTES (5 MiB), dead bytes included.
 *
 * SIZE= is only a sender's word: after a body declared big ends short (or is dropped), the next
 * ones declared big share like undeclared ones (moved if they do grow big) until one of them is
 * big. A sender declaring 1 MiB for 64 KiB bodies costs one new segment, not one per body; a new
 * segment is taken for a lie at most once per body declared big that was big, plus once at start
 * and once per body declared big that was being written when the last one ended.
 */
import { join } from "../posix_path.ts";
import { errorText } from "../errors.ts";
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
  /** The body's length, as its name says (undefined in names of before step 10). */
  readonly length: number | undefined;
}

/**
 * A segment takes no more bodies once it holds this many bytes (~40 bodies of 100 KB; the body
 * that passes it still goes in whole, under BIG_BODY_BYTES or it is moved): its inode is paid
 * once for them. One message held for an offline customer keeps its segment, under SEGMENT_BYTES +
 * BIG_BODY_BYTES, of which only bodies of its own key (its domain's) can be long gone.
 */
export const SEGMENT_BYTES = 4 * 1024 * 1024;

/** A body this long has a segment of its own (moved there if it started after other bodies). */
export const BIG_BODY_BYTES = 1024 * 1024;

/** The key of messages whose recipients are in several domains or on the mx route. */
export const MIXED_KEY = "mixed";

/**
 * Which segments a message's body may share: those of messages to the same single ATRN domain
 * (its customer collects them together, so they are deleted together), else the mixed ones.
 */
export function segmentKey(
  recipients: readonly { readonly domain: string; readonly route?: string }[],
): string {
  const domain = recipients[0]?.domain;
  if (domain === undefined) return MIXED_KEY;
  for (const r of recipients) {
    if ((r.route ?? "atrn") !== "atrn" || r.domain !== domain) return MIXED_KEY;
  }
  return `atrn:${domain}`;
}

/**
 * `<segment>@<offset>+<length>` of a body in a segment (`+<length>` missing in names of before
 * step 10); a name without `@` is a whole file.
 */
const AT = "@";
const PART = /^([0-9]{1,15})(?:\+([0-9]{1,15}))?$/;

/** The name a row gives a body of `length` bytes at `offset` in `segment`. */
export function bodyName(segment: string, offset: number, length: number): string {
  return `${segment}${AT}${offset}+${length}`;
}

/** Where the body a row names is; undefined for a name no body file has (never a path). */
export function parseBodyName(name: string): BodyPlace | undefined {
  const at = name.indexOf(AT);
  if (at < 0) {
    return isQueueId(name) ? { file: name, offset: undefined, length: undefined } : undefined;
  }
  const file = name.slice(0, at);
  const part = PART.exec(name.slice(at + 1));
  if (!isQueueId(file) || part === null) return undefined;
  const length = part[2] === undefined ? undefined : Number(part[2]);
  return { file, offset: Number(part[1]), length };
}

/**
 * The body a row names `name` in the body folder `dir`, `readBytes` at a time (each a new
 * buffer: the reader may keep it). Throws when its file is missing or does not hold its `size`
 * bytes: a body with a hole is never sent. A whole file (written before step 9) must hold
 * exactly `size`; a name of step 10 says the body's length, which must be `size` (a row's `size`
 * lowered or raised would send part of the body, or the next one's bytes with it).
 */
export function* readBody(
  dir: string,
  readBytes: number,
  id: string,
  name: string,
  size: number,
): Generator<Uint8Array> {
  let file: Deno.FsFile;
  const place = parseBodyName(name);
  try {
    if (place === undefined) throw new Error(`"${name}" is not a body file's name`);
    if (place.length !== undefined && place.length !== size) {
      throw new Error(`its row says ${size} bytes, its name ${place.length}: stored damaged`);
    }
    file = Deno.openSync(join(dir, place.file), { read: true });
  } catch (err) {
    throw new Error(`Cannot read body of message "${id}": ${errorText(err)}`);
  }
  try {
    const whole = place.offset === undefined;
    // Checked before the first byte too: a reader that stops early (a report's prefix) gets
    // no part of a body its file does not hold whole.
    const end = (place.offset ?? 0) + size;
    const held = file.statSync().size;
    if (whole ? held !== size : held < end) {
      throw new Error(
        `Cannot read body of message "${id}": its file holds ${held} bytes, not ${end}`,
      );
    }
    if (!whole) file.seekSync(place.offset, Deno.SeekMode.Start);
    let total = 0;
    // A whole file is read one byte past its size: it must end there.
    while (whole || total < size) {
      const buffer = new Uint8Array(Math.min(readBytes, Math.max(1, size - total)));
      const n = file.readSync(buffer);
      if (n === null || n === 0) break;
      total += n;
      if (total > size) break;
      yield n === buffer.length ? buffer : buffer.subarray(0, n);
    }
    if (total !== size) {
      throw new Error(
        `Cannot read body of message "${id}": its file holds ${total} bytes, not ${size}`,
      );
    }
  } finally {
    file.close();
  }
}

/** One segment file of this process, open for appending. */
export class Segment {
  readonly name: string;
  readonly path: string;
  readonly file: Deno.FsFile;
  /** Bodies of this key only (`segmentKey`). */
  readonly key: string;
  /** Where the next body starts (the bytes written so far). */
  end = 0;
  /** Takes no more bodies: full, after a big body, a failed write or sync, or its store closed. */
  retired = false;
  /** A writer appends to it now. */
  held = false;
  #isClosed = false;

  constructor(name: string, path: string, file: Deno.FsFile, key: string) {
    this.name = name;
    this.path = path;
    this.file = file;
    this.key = key;
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
  /** A body of this many bytes is alone in its segment (BIG_BODY_BYTES). */
  readonly bigBytes: number;
  /** A body its sender declared big (SMTP SIZE=) was that big, or ended (or was dropped) short. */
  declared(isBig: boolean): void;
}

/** One body being appended to its segment. */
export class BodyFileWriter {
  /** Where the body starts in its segment. */
  readonly start: number;
  readonly #segment: Segment;
  readonly #owner: SegmentOwner;
  #holds = true;
  /** The segment's end when this writer stopped holding it. */
  #end = 0;
  #dropped = false;
  /** Its sender declared it big (SIZE=); the owner is told once what it was (`#tell`). */
  readonly declared: boolean;
  #told = false;

  constructor(segment: Segment, owner: SegmentOwner, declared = false) {
    this.#segment = segment;
    this.#owner = owner;
    this.start = segment.end;
    this.declared = declared;
  }

  /** The message row's `body_file`: `<segment>@<offset>+<length>` of the bytes so far. */
  get name(): string {
    return bodyName(this.#segment.name, this.start, this.length);
  }

  get key(): string {
    return this.#segment.key;
  }

  /** Bytes written so far (kept at close: the segment's next body goes on from there). */
  get length(): number {
    return (this.#holds ? this.#segment.end : this.#end) - this.start;
  }

  /** `n` more bytes would make this a big body after others: it must move first (see move). */
  outgrows(n: number): boolean {
    return this.start > 0 && this.length + n >= this.#owner.bigBytes;
  }

  /** Appends the bytes written so far to `to` (a fresh segment), read back from this segment. */
  async copyTo(to: BodyFileWriter): Promise<void> {
    // The body goes on in `to`, which tells what it was.
    this.#told = true;
    const file = await Deno.open(this.#segment.path, { read: true });
    try {
      await file.seek(this.start, Deno.SeekMode.Start);
      const buffer = new Uint8Array(64 * 1024);
      let left = this.length;
      while (left > 0) {
        const n = await file.read(buffer.subarray(0, Math.min(buffer.length, left)));
        if (n === null || n === 0) throw new Error("queue body segment shorter than written");
        to.write(buffer.subarray(0, n));
        left -= n;
      }
    } finally {
      file.close();
    }
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
      // A big body is alone in its segment (it starts it: see outgrows).
      if (this.length >= this.#owner.bigBytes) {
        segment.retired = true;
        this.#tell(true);
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
      this.#tell(false);
    } catch (err) {
      segment.retired = true;
      throw err;
    } finally {
      this.close();
    }
  }

  /** No row names this body (dropped, or its row's COMMIT rolled back). */
  discard(): void {
    this.#tell(false);
    this.close();
    if (this.#dropped) return;
    this.#dropped = true;
    this.#owner.drop(this.#segment.name);
  }

  /** Tells the owner once whether a body declared big was big (a body that reached it told). */
  #tell(isBig: boolean): void {
    if (!this.declared || this.#told) return;
    this.#told = true;
    this.#owner.declared(isBig);
  }

  /** Done appending: the segment takes the next body. */
  close(): void {
    if (!this.#holds) return;
    this.#end = this.#segment.end;
    this.#holds = false;
    this.#owner.release(this.#segment);
  }
}
