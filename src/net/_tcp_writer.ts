/**
 * The write side of a native connection (native_conn.ts): bytes onto a Deno.TcpConn in the
 * order written, each write complete (Deno's write may take part of a buffer: the rest follows),
 * at most HIGH_WATER_WRITE_BYTES queued before a write waits, and a deadline on every write. A
 * peer that stops reading must not hold the session forever: a kernel write still waiting at the
 * earliest deadline among the queued writes fails every waiting write and drops the connection.
 * The deadlines share one timer (writeDeadlines in _read_deadlines.ts): no timer per write.
 */
import { ConnClosedError, TimeoutError } from "./conn_types.ts";
import { writeDeadlines } from "./_read_deadlines.ts";
import { Fifo } from "./_fifo.ts";

/** Bytes that may wait in the queue while a write returns at once; a write beyond it waits. */
export const HIGH_WATER_WRITE_BYTES = 64 * 1024;

/** The most bytes of queued writes joined into one kernel write. */
const JOIN_LIMIT_BYTES = 64 * 1024;

/** What the writer writes to (a Deno.TcpConn; a double in tests). */
export interface WriteSink {
  write(bytes: Uint8Array): Promise<number>;
}

/** The failure of a writer closed with nothing waiting (never thrown: callers get their own). */
const CLOSED = new ConnClosedError("connection closed");

/** The result of every write taken at once (one settled promise, shared). */
const WRITTEN: Promise<void> = Promise.resolve();

interface Queued {
  /** What is left to hand to the kernel. */
  bytes: Uint8Array;
  readonly deadlineAt: number;
  /** Settles the caller's promise once every byte of this entry is in the kernel. */
  readonly settle?: { resolve(): void; reject(err: Error): void };
  /** A kernel write of its own (writeEach), never joined with others. */
  readonly alone?: boolean;
}

/** Ordered, complete writes to one sink. */
export class TcpWriter {
  readonly #sink: WriteSink;
  readonly #onFailure: (err: Error) => void;
  /** Kept across writes: an array emptied at every reply reallocated at the next. */
  readonly #queue = new Fifo<Queued>();
  #queuedBytes = 0;
  #running = false;
  #failure: Error | undefined;
  #idleWaiters: (() => void)[] = [];
  readonly #deadline: { deadlineAt: number; readonly expire: () => void; slot: number };

  /** `onFailure`: the sink failed or a deadline passed (the caller drops the connection). */
  constructor(sink: WriteSink, onFailure: (err: Error) => void) {
    this.#sink = sink;
    this.#onFailure = onFailure;
    this.#deadline = {
      deadlineAt: 0,
      expire: () => this.#failHere(new TimeoutError("write")),
      slot: -1,
    };
  }

  /** Bytes written and not yet in the kernel. */
  get pendingBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Queues `bytes`. Resolves at once while at most HIGH_WATER_WRITE_BYTES wait, else (and with
   * `flush`) once they are in the kernel. The caller must not change `bytes` afterwards.
   */
  write(bytes: Uint8Array, timeoutMs: number, flush: boolean | undefined): Promise<void> {
    if (this.#failure) return Promise.reject(this.#closedError());
    if (bytes.byteLength === 0 && (!flush || this.#queue.length === 0)) return WRITTEN;
    this.#queuedBytes += bytes.byteLength;
    if (!flush && this.#queuedBytes <= HIGH_WATER_WRITE_BYTES) {
      this.#enqueue({ bytes, deadlineAt: performance.now() + timeoutMs });
      return WRITTEN;
    }
    return new Promise<void>((resolve, reject) => {
      this.#enqueue({
        bytes,
        deadlineAt: performance.now() + timeoutMs,
        settle: { resolve, reject },
      });
    });
  }

  /**
   * Each non-empty piece as a kernel write of its own, the next after the previous one;
   * resolves once the last is in the kernel. One deadline for the list.
   */
  writeEach(pieces: readonly Uint8Array[], timeoutMs: number): Promise<void> {
    if (this.#failure) return Promise.reject(this.#closedError());
    const deadlineAt = performance.now() + timeoutMs;
    let last = pieces.length - 1;
    while (last >= 0 && pieces[last]?.byteLength === 0) last--;
    if (last < 0) return WRITTEN;
    return new Promise<void>((resolve, reject) => {
      for (let i = 0; i <= last; i++) {
        const bytes = pieces[i] as Uint8Array;
        if (bytes.byteLength === 0) continue;
        this.#queuedBytes += bytes.byteLength;
        this.#enqueue(
          i === last
            ? { bytes, deadlineAt, settle: { resolve, reject }, alone: true }
            : { bytes, deadlineAt, alone: true },
        );
      }
    });
  }

  /**
   * The connection is closed: waiting writes fail with ConnClosedError, later ones too. The
   * error is made only when a write waits (a stack trace per connection costs ~30 µs).
   */
  close(): void {
    this.fail(this.#queue.length > 0 ? new ConnClosedError("connection closed") : CLOSED);
  }

  /** Resolves once nothing waits to be written (every byte in the kernel, or a failure). */
  idle(): Promise<void> {
    if (this.#queue.length === 0) return WRITTEN;
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Fails every waiting write with `err` (idempotent); the writer refuses writes from now on.
   * The connection calls it when it drops; `onFailure` is not called then.
   */
  fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    writeDeadlines.delete(this.#deadline);
    const queued = this.#queue.clear();
    this.#queuedBytes = 0;
    for (const q of queued) q.settle?.reject(err);
    this.#wakeIdle();
  }

  /** The sink failed or a deadline passed: fail, and tell the connection. */
  #failHere(err: Error): void {
    if (this.#failure) return;
    this.fail(err);
    this.#onFailure(err);
  }

  #closedError(): Error {
    return new ConnClosedError(
      this.#failure instanceof ConnClosedError ? this.#failure.message : "connection closed",
    );
  }

  #enqueue(q: Queued): void {
    this.#queue.push(q);
    if (!this.#running) {
      this.#writeHead();
    } else if (q.deadlineAt < this.#deadline.deadlineAt) {
      // Watched from now on, not only once the writes before it are done.
      writeDeadlines.delete(this.#deadline);
      this.#deadline.deadlineAt = q.deadlineAt;
      writeDeadlines.add(this.#deadline);
    }
  }

  /**
   * Hands the head of the queue (joined with what waits behind it) to the kernel; each write's
   * end calls #written or #writeFailed, which starts the next. Callbacks bound once, not an
   * async loop: an MX session writes ~7 replies, each of which began a new async frame.
   */
  #writeHead(): void {
    const queue = this.#queue;
    // An empty write (a flush queued behind others) is done once the bytes before it are: it
    // never goes to the kernel (a write of nothing would take nothing, and again).
    for (let q = queue.at(0); q !== undefined && q.bytes.byteLength === 0; q = queue.at(0)) {
      queue.shift();
      q.settle?.resolve();
    }
    if (queue.length === 0 || this.#failure !== undefined) {
      this.#running = false;
      this.#wakeIdle();
      return;
    }
    this.#running = true;
    const head = queue.at(0) as Queued;
    this.#deadline.deadlineAt = queue.length === 1 ? head.deadlineAt : earliest(queue);
    writeDeadlines.add(this.#deadline);
    let writing: Promise<number>;
    try {
      writing = this.#sink.write(joined(queue));
    } catch (err) {
      writing = Promise.reject(err);
    }
    writing.then(this.#written, this.#writeFailed);
  }

  /** The kernel took `n` bytes from the front of the queue. */
  readonly #written = (n: number): void => {
    writeDeadlines.delete(this.#deadline);
    if (this.#failure === undefined) {
      this.#queuedBytes -= n;
      const queue = this.#queue;
      for (let left = n; left > 0;) {
        const q = queue.at(0) as Queued;
        if (left < q.bytes.byteLength) {
          q.bytes = q.bytes.subarray(left);
          break;
        }
        left -= q.bytes.byteLength;
        queue.shift();
        q.settle?.resolve();
      }
    }
    this.#writeHead();
  };

  readonly #writeFailed = (err: unknown): void => {
    writeDeadlines.delete(this.#deadline);
    this.#failHere(new ConnClosedError(err instanceof Error ? err.message : String(err)));
    this.#running = false;
    this.#wakeIdle();
  };

  #wakeIdle(): void {
    if (this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}

/**
 * What the next kernel write takes: the first entry, joined with the ones queued behind it up
 * to JOIN_LIMIT_BYTES (replies written one by one while a write was in flight go out in one
 * segment, as node:net's writev sent them; one segment per reply cost the reading peer a
 * wake-up each). Entries of writeEach stay alone.
 */
function joined(queue: Fifo<Queued>): Uint8Array {
  const head = queue.at(0) as Queued;
  if (queue.length === 1 || head.alone) return head.bytes;
  let total = head.bytes.byteLength;
  let count = 1;
  for (; count < queue.length; count++) {
    const q = queue.at(count) as Queued;
    if (q.alone || total + q.bytes.byteLength > JOIN_LIMIT_BYTES) break;
    total += q.bytes.byteLength;
  }
  if (count === 1) return head.bytes;
  const out = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const b = (queue.at(i) as Queued).bytes;
    out.set(b, at);
    at += b.byteLength;
  }
  return out;
}

/** The earliest deadline in the queue (a later write may have a shorter one). */
function earliest(queue: Fifo<Queued>): number {
  let at = Infinity;
  for (let i = 0, q = queue.at(0); q !== undefined; q = queue.at(++i)) {
    if (q.deadlineAt < at) at = q.deadlineAt;
  }
  return at;
}
