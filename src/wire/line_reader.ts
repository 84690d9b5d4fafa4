/**
 * Pull reader over a byte source: command/reply lines (CRLF only), DATA bodies and BDAT
 * chunks. It owns the leftover buffer, so the next role (after ATRN) starts with exactly the
 * bytes that were left, and STARTTLS can see (and drop) bytes pipelined in plaintext.
 * Never decodes bytes; every limit is an argument; hostile input is a result, not a throw.
 */
import { DataDecoder } from "./data_decoder.ts";
import type { DataFault, DataLimits } from "./data_decoder.ts";

const CR = 13;
const LF = 10;

/** Where bytes come from: `null` is end of stream. Conn implements it. */
export interface PullSource {
  read(timeoutMs?: number): Promise<Uint8Array | null>;
  /** Bytes received and not read yet (a Conn's queue); absent: 0. */
  readonly readableBytes?: number;
}

/** One read line, or why there is none. */
export type LineResult =
  | { readonly kind: "line"; readonly line: Uint8Array }
  /** Longer than the limit; the rest of it was read and dropped. */
  | { readonly kind: "tooLong" }
  /** Ended by a bare LF, or held a bare CR (smuggling defence). */
  | { readonly kind: "bareNewline" }
  | { readonly kind: "eof" };

/** How a DATA body ended. */
export type DataResult =
  | { readonly kind: "ok"; readonly size: number }
  | { readonly kind: "rejected"; readonly fault: DataFault; readonly size: number }
  | { readonly kind: "eof" }
  /** `deadlineAt` passed before the end (the rest is left unread). */
  | { readonly kind: "deadline" };

/** How `readExact` ended: all the octets, end of stream, or `deadlineAt` passed first. */
export type ExactResult = "ok" | "eof" | "deadline";

const DEADLINE = { kind: "deadline" } as const;
const EOF_LINE: LineResult = { kind: "eof" };
const TOO_LONG: LineResult = { kind: "tooLong" };
const BARE_NEWLINE: LineResult = { kind: "bareNewline" };

/** The empty buffer, shared (never written, never freed: `release` skips empty arrays). */
const EMPTY = new Uint8Array(0);

/** Receives body bytes; awaited, so a slow consumer slows the reader (backpressure). */
export type ChunkConsumer = (chunk: Uint8Array) => Promise<void> | void;

/** Options for a `LineReader`. */
export interface LineReaderOptions {
  /**
   * Frees each body chunk read by `readData`/`readExact` as soon as the consumer has returned
   * for all of it (its ArrayBuffer is detached), instead of leaving it to the next GC: socket
   * chunks are 64 KiB of external memory each, and V8 lets tens of MB of them pile up before
   * it collects (bench/rss.ts: +40 MB for one 50 MiB message without this, +2 MB with it).
   * Only a chunk that owns its whole ArrayBuffer and was read inside the body is freed; for
   * BDAT also the rest of a chunk that its command line was cut from, once the body took it to
   * its end: a line read from this reader is then valid only until the next read. Only for a
   * consumer that copies what it keeps and holds no view once its promise settled (the queue
   * writer); a consumer that hands views to a socket write that may still be queued must not
   * use this.
   */
  readonly releaseConsumed?: boolean;
}

/** Pull reader with its own leftover buffer. */
export class LineReader {
  #source: PullSource;
  #buf: Uint8Array = EMPTY;
  /**
   * The chunk `#buf` is a view into, when that chunk is all of its ArrayBuffer (a socket read
   * or a merge of ours; never a pool slice): what `readExact` may free once it took `#buf` to
   * its end, though a command line was cut from its start (see `releaseConsumed`).
   */
  #whole: Uint8Array | undefined;
  readonly #releaseConsumed: boolean;
  /** The line being read: its limits, its deadline, how far the buffer was scanned for its LF. */
  readonly #line: {
    maxBytes: number;
    timeoutMs: number | undefined;
    deadline: number | undefined;
    scanned: number;
    dropping: boolean;
    beforeWait: (() => Promise<void> | undefined) | undefined;
  } = {
    maxBytes: 0,
    timeoutMs: undefined,
    deadline: undefined,
    scanned: 0,
    dropping: false,
    beforeWait: undefined,
  };

  constructor(source: PullSource, opts: LineReaderOptions = {}) {
    this.#source = source;
    this.#releaseConsumed = opts.releaseConsumed ?? false;
  }

  /** Bytes read from the source but not consumed yet. */
  get bufferedBytes(): number {
    return this.#buf.length;
  }

  /**
   * Bytes here to be consumed without waiting: the buffer and what the source received already
   * (a pipelining peer's next commands may sit in the Conn's queue while the buffer is empty).
   * Never reads.
   */
  get unreadBytes(): number {
    return this.#buf.length + (this.#source.readableBytes ?? 0);
  }

  /**
   * Whether the next line is already buffered and is exactly `line` (ASCII letters in any
   * case) followed by CRLF. Never reads: a pipelining server's look at what comes next.
   */
  nextLineIs(line: string): boolean {
    const buf = this.#buf;
    if (buf.length < line.length + 2) return false;
    for (let i = 0; i < line.length; i++) {
      // ASCII case folding: bit 0x20 set is lower case for letters; other bytes must match.
      const b = buf[i] ?? 0;
      const c = line.charCodeAt(i);
      if (b !== c && !(isAsciiLetter(c) && (b | 0x20) === (c | 0x20))) return false;
    }
    return buf[line.length] === CR && buf[line.length + 1] === LF;
  }

  /** Whether the buffered bytes begin with `prefix` (ASCII, case-insensitive for letters). */
  nextLineStartsWith(prefix: string): boolean {
    const buf = this.#buf;
    if (buf.length < prefix.length) return false;
    for (let i = 0; i < prefix.length; i++) {
      const b = buf[i] ?? 0;
      const c = prefix.charCodeAt(i);
      if (b !== c && !(isAsciiLetter(c) && (b | 0x20) === (c | 0x20))) return false;
    }
    return true;
  }

  /** Drops unread bytes (at STARTTLS: plaintext sent after the command is an injection). */
  discardBuffered(): number {
    const n = this.#buf.length;
    this.#buf = EMPTY;
    return n;
  }

  /**
   * Takes what a read of the source brought (awaited by the caller: no async frame of its own
   * for each read); false at the end of the stream.
   */
  #append(read: Uint8Array | null): boolean {
    if (read === null) return false;
    // A socket's chunk is a node Buffer, whose indexOf and subarray are node's JS versions
    // (slower, and allocating at every line): it is read as a plain Uint8Array over the same
    // bytes (no copy), and every line and body piece handed out is one too.
    const chunk = read.constructor === Uint8Array
      ? read
      : new Uint8Array(read.buffer, read.byteOffset, read.byteLength);
    if (this.#buf.length === 0) {
      this.#buf = chunk;
    } else {
      const merged = new Uint8Array(this.#buf.length + chunk.length);
      merged.set(this.#buf);
      merged.set(chunk, this.#buf.length);
      this.#buf = merged;
    }
    const owns = this.#buf.byteOffset === 0 &&
      this.#buf.byteLength === this.#buf.buffer.byteLength;
    this.#whole = owns ? this.#buf : undefined;
    return true;
  }

  /**
   * Reads one CRLF-terminated line (returned without CRLF). A line over `maxBytes`
   * (CRLF included) is drained to its end and reported as `tooLong`. One line at a time.
   * Not an async function: each read of the source goes on in one callback bound once (an async
   * frame per command cost an MX session ~3 KB of garbage per message).
   * `beforeWait` runs (awaited, once) before the first read that must wait for the peer, i.e.
   * when the line is not all here and the source has received nothing more: a pipelining
   * server's held replies go out then (RFC 2920 §3.2), also when part of the line is here.
   */
  readLine(
    maxBytes: number,
    timeoutMs?: number,
    beforeWait?: () => Promise<void> | undefined,
  ): Promise<LineResult> {
    if (this.#lineResolve !== undefined) {
      // The line state is shared: a second call would reset it, and its read would take the
      // first call's place in the source, leaving the first never settled.
      return Promise.reject(new Error("LineReader.readLine: a line is already being read"));
    }
    const line = this.#line;
    line.maxBytes = maxBytes;
    line.timeoutMs = timeoutMs;
    line.deadline = undefined;
    line.scanned = 0;
    line.dropping = false;
    line.beforeWait = beforeWait;
    const found = this.#nextLine();
    return found !== undefined ? Promise.resolve(found) : this.#readMore();
  }

  /** The line in the buffer, if it is all there; else the buffer is ready for more bytes. */
  #nextLine(): LineResult | undefined {
    const line = this.#line;
    const buf = this.#buf;
    const lf = buf.indexOf(LF, line.scanned);
    if (lf >= 0) {
      // The line is buf[0, lf], CRLF included; only its text gets a view of its own.
      const lineEnd = lf + 1;
      // A read that brought just this line (each command of an MX) leaves nothing: no view.
      this.#buf = lineEnd === buf.length ? EMPTY : buf.subarray(lineEnd);
      if (line.dropping || lineEnd > line.maxBytes) return TOO_LONG;
      if (lineEnd < 2 || buf[lf - 1] !== CR) return BARE_NEWLINE;
      // The first CR of the line is the one before its LF, or it is a bare one.
      if (buf.indexOf(CR) < lf - 1) return BARE_NEWLINE;
      return { kind: "line", line: buf.subarray(0, lf - 1) };
    }
    if (line.dropping || buf.length > line.maxBytes) {
      // Keep memory bounded: forget what we have, remember that the line is too long, and
      // give each dropped chunk back at once. Left to the GC, the socket chunks of an endless
      // line piled up by the hundreds of MB and stayed (#10: 50 connections × 20 MB without
      // LF took `serve` from 67 MB to 270 MB; bench/endless_line.ts).
      line.dropping = true;
      this.#buf = EMPTY;
      release(buf);
    }
    line.scanned = this.#buf.length;
    return undefined;
  }

  /** Settles the pending readLine; set only while it waits for reads. */
  #lineResolve: ((r: LineResult) => void) | undefined;
  #lineReject: ((err: unknown) => void) | undefined;

  /**
   * Reads more of the line being read: one promise for the whole line, settled from the read
   * callbacks. (A callback that returned a new promise for each read chained one promise per
   * read, all held until the line ended: ~100 B per read, so a peer trickling an endless line
   * in small packets grew serve by hundreds of MB within the 5 min line timeout.)
   */
  #readMore(): Promise<LineResult> {
    return new Promise<LineResult>((resolve, reject) => {
      this.#lineResolve = resolve;
      this.#lineReject = reject;
      this.#readNext();
    });
  }

  #readNext(): void {
    const line = this.#line;
    const beforeWait = line.beforeWait;
    if (beforeWait !== undefined && (this.#source.readableBytes ?? 0) === 0) {
      line.beforeWait = undefined;
      let sent: Promise<void> | undefined;
      try {
        sent = beforeWait();
      } catch (err) {
        return this.#onLineError(err);
      }
      if (sent !== undefined) {
        sent.then(this.#readAfterWait, this.#onLineError);
        return;
      }
    }
    let left: number | undefined;
    if (line.timeoutMs !== undefined) {
      // Slowloris: the timeout bounds the whole line, not each read, so a peer trickling one
      // byte per read cannot hold a session forever. Deadlines here (this one and a body's
      // `deadlineAt`) are on the monotonic clock. The whole line's deadline starts at its first
      // read (no clock read for a line that was here already).
      const now = performance.now();
      line.deadline ??= now + line.timeoutMs;
      left = Math.max(1, line.deadline - now);
    }
    let reading: Promise<Uint8Array | null>;
    try {
      reading = this.#source.read(left);
    } catch (err) {
      return this.#onLineError(err);
    }
    reading.then(this.#onLineRead, this.#onLineError);
  }

  readonly #readAfterWait = (): void => this.#readNext();

  #settleLine(r: LineResult): void {
    const resolve = this.#lineResolve;
    this.#lineResolve = undefined;
    this.#lineReject = undefined;
    resolve?.(r);
  }

  readonly #onLineRead = (read: Uint8Array | null): void => {
    let found: LineResult | undefined;
    try {
      found = this.#append(read) ? this.#nextLine() : EOF_LINE;
    } catch (err) {
      return this.#onLineError(err);
    }
    if (found !== undefined) this.#settleLine(found);
    else this.#readNext();
  };

  readonly #onLineError = (err: unknown): void => {
    const reject = this.#lineReject;
    this.#lineResolve = undefined;
    this.#lineReject = undefined;
    reject?.(err);
  };

  /**
   * Reads a DATA body up to and including CRLF.CRLF, unstuffed, into `consume`.
   * After a fault the body is still read to its real end (then the caller replies).
   * `timeoutMs` bounds each read; `deadlineAt` (a `performance.now()` time: monotonic, so a
   * clock step neither stretches nor cuts it) the whole body, however often bytes come
   * (slowloris), with no timer of its own: each read waits at most until it.
   */
  async readData(
    limits: DataLimits,
    consume: ChunkConsumer,
    timeoutMs?: number,
    deadlineAt?: number,
  ): Promise<DataResult> {
    const decoder = new DataDecoder(limits);
    for (;;) {
      if (this.#buf.length > 0) {
        const chunk = this.#buf;
        const { segments, endOffset } = decoder.push(chunk);
        this.#buf = endOffset >= 0 ? chunk.subarray(endOffset) : EMPTY;
        if (decoder.fault === undefined) {
          for (const seg of segments) await consume(seg);
        }
        if (endOffset >= 0) {
          const fault = decoder.fault;
          return fault === undefined
            ? { kind: "ok", size: decoder.size }
            : { kind: "rejected", fault, size: decoder.size };
        }
        if (this.#releaseConsumed) release(chunk);
      }
      const filled = await this.#fillBefore(timeoutMs, deadlineAt);
      if (filled !== true) return filled === "eof" ? { kind: "eof" } : DEADLINE;
    }
  }

  /**
   * Reads exactly `count` bytes (BDAT) into `consume`. `timeoutMs` and `deadlineAt` as for
   * `readData`. `beforeWait` runs (awaited) before each read that must wait for the peer, i.e.
   * when nothing is buffered or received already: a pipelining server's held replies go out then.
   */
  async readExact(
    count: number,
    consume: ChunkConsumer,
    timeoutMs?: number,
    deadlineAt?: number,
    beforeWait?: () => Promise<void> | undefined,
  ): Promise<ExactResult> {
    let left = count;
    while (left > 0) {
      if (this.#buf.length === 0) {
        if (beforeWait !== undefined && (this.#source.readableBytes ?? 0) === 0) {
          const sent = beforeWait();
          if (sent !== undefined) await sent;
        }
        const filled = await this.#fillBefore(timeoutMs, deadlineAt);
        if (filled !== true) return filled;
      }
      const whole = this.#buf;
      const take = Math.min(left, whole.length);
      const part = whole.subarray(0, take);
      // Taken whole, the chunk may be freed below: nothing left may be a view of it (the shared
      // empty array is never freed).
      this.#buf = take === whole.length ? EMPTY : whole.subarray(take);
      left -= take;
      await consume(part);
      if (this.#releaseConsumed && take === whole.length) {
        // A pipelined `BDAT n` and its first octets share a socket chunk: its rest is freed too.
        const chunk = this.#whole;
        release(chunk !== undefined && chunk.buffer === whole.buffer ? chunk : whole);
      }
    }
    return "ok";
  }

  /**
   * A read for a body: "deadline" once `deadlineAt` has passed (checked before each read, so
   * a peer that always has bytes waiting is stopped too), and a read that fails at or after
   * it (its wait was cut to the deadline) is the deadline as well, not an error.
   */
  async #fillBefore(
    timeoutMs: number | undefined,
    deadlineAt: number | undefined,
  ): Promise<true | "eof" | "deadline"> {
    if (deadlineAt === undefined) {
      return this.#append(await this.#source.read(timeoutMs)) ? true : "eof";
    }
    // Whole milliseconds, rounded up: a timer of a fraction less would end just before it.
    const left = Math.ceil(deadlineAt - performance.now());
    if (left <= 0) return "deadline";
    try {
      const wait = timeoutMs === undefined ? left : Math.min(timeoutMs, left);
      return this.#append(await this.#source.read(wait)) ? true : "eof";
    } catch (err) {
      if (performance.now() >= deadlineAt) return "deadline";
      throw err;
    }
  }
}

/**
 * Gives a consumed or dropped chunk's memory back now by detaching its ArrayBuffer
 * (`transfer(0)`), if the chunk is all of that buffer (so no other view into it, such as a
 * pool slice or a line already returned, is hurt).
 */
function release(chunk: Uint8Array): void {
  const buffer = chunk.buffer;
  if (chunk.byteLength === 0 || !(buffer instanceof ArrayBuffer) || buffer.detached) return;
  if (chunk.byteOffset !== 0 || chunk.byteLength !== buffer.byteLength) return;
  buffer.transfer(0);
}

function isAsciiLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}
