/**
 * The read side of a Conn (socket_conn.ts, native_conn.ts): received chunks waiting to be
 * read, as they came (never copied, never decoded), the end or the error behind them, and the
 * one read waiting for more. A waiting read's deadline joins the process's shared set
 * (_read_deadlines.ts): no timer per read.
 */
import { ConnClosedError, TimeoutError } from "./conn_types.ts";
import { readDeadlines } from "./_read_deadlines.ts";
import { Fifo } from "./_fifo.ts";

/** Chunks received and not read yet. */
export class ReadQueue {
  /** Kept across reads: an array emptied at every read reallocated at the next. */
  readonly #chunks = new Fifo<Uint8Array>();
  #bytes = 0;
  #ended = false;
  /** The last chunk queued ended with a `QUIT` line (see `endedAfterQuit`). */
  #lastIsQuit = false;
  #error: Error | undefined;
  /** Resolves the waiting read's wait (set only while a read waits). */
  #resolveWait: (() => void) | undefined;
  /** Fails the waiting read (set with #resolveWait). */
  #rejectWait: ((err: Error) => void) | undefined;
  /** The waiting read among the shared deadlines while it waits with one. */
  readonly #deadline: { deadlineAt: number; readonly expire: () => void; slot: number };

  constructor() {
    this.#deadline = { deadlineAt: 0, expire: () => this.#expire(), slot: -1 };
  }

  /** Bytes received and not read yet. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The end of the stream came (or the connection closed). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Queues a chunk; returns the bytes queued now. */
  push(chunk: Uint8Array): number {
    this.#chunks.push(chunk);
    this.#lastIsQuit = endsWithQuit(chunk);
    this.#bytes += chunk.byteLength;
    this.wake();
    return this.#bytes;
  }

  /** No more data: reads return what is queued, then null. */
  end(): void {
    this.#ended = true;
    this.wake();
  }

  /**
   * The stream ended right after a `QUIT` line: a client that half-closed once it had sent
   * everything and reads the replies (RFC 5321 §4.1.1.10), not one that hung up in the middle.
   * Judged from the last chunk alone (a QUIT split across two chunks counts as a hang-up).
   */
  get endedAfterQuit(): boolean {
    return this.#ended && this.#lastIsQuit;
  }

  /**
   * The end (or an error) is queued behind the unread bytes (Conn.inputEnded, for both Conns);
   * an end right after a `QUIT` is a client done sending, not gone (`endedAfterQuit`).
   */
  get inputEnded(): boolean {
    return (this.#ended && !this.endedAfterQuit) || this.#error !== undefined;
  }

  /** The connection failed: reads return what is queued, then throw ConnClosedError. */
  fail(err: Error): void {
    this.#error ??= err;
    this.wake();
  }

  /** The error the connection failed with, if any. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Drops every queued chunk; returns how many bytes they held. */
  clear(): number {
    const bytes = this.#bytes;
    this.#chunks.clear();
    this.#bytes = 0;
    return bytes;
  }

  /**
   * The next chunk; null at the end; undefined when nothing has come yet (then `wait`).
   * Throws ConnClosedError once the queue is empty after a failure.
   */
  take(): Uint8Array | null | undefined {
    const chunk = this.#chunks.shift();
    if (chunk !== undefined) {
      this.#bytes -= chunk.byteLength;
      return chunk;
    }
    if (this.#error) throw new ConnClosedError(this.#error.message);
    return this.#ended ? null : undefined;
  }

  /** Waits for a chunk, the end or an error (or a `wake`), at most `timeoutMs`. */
  wait(timeoutMs: number | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#resolveWait = resolve;
      this.#rejectWait = reject;
      if (timeoutMs === undefined) return;
      this.#deadline.deadlineAt = performance.now() + timeoutMs;
      readDeadlines.add(this.#deadline);
    });
  }

  /** Ends the waiting read's wait: it looks again. */
  wake(): void {
    const resolve = this.#resolveWait;
    if (resolve === undefined) return;
    this.#resolveWait = undefined;
    this.#rejectWait = undefined;
    readDeadlines.delete(this.#deadline);
    resolve();
  }

  /** The waiting read no longer has a deadline (it ends with the connection). */
  dropDeadline(): void {
    readDeadlines.delete(this.#deadline);
  }

  /** The waiting read's deadline passed (called by the shared timer). */
  #expire(): void {
    const reject = this.#rejectWait;
    this.#resolveWait = undefined;
    this.#rejectWait = undefined;
    reject?.(new TimeoutError("read"));
  }
}

/** Whether `bytes` ends with the line `QUIT` (any case). */
function endsWithQuit(bytes: Uint8Array): boolean {
  const n = bytes.byteLength;
  if (n < 6 || bytes[n - 2] !== 0x0d || bytes[n - 1] !== 0x0a) return false;
  if (n > 6 && bytes[n - 7] !== 0x0a) return false;
  return (bytes[n - 6]! | 0x20) === 0x71 && (bytes[n - 5]! | 0x20) === 0x75 &&
    (bytes[n - 4]! | 0x20) === 0x69 && (bytes[n - 3]! | 0x20) === 0x74;
}
