/**
 * The buffer both writers cut a streamed body into `message_chunks` rows with: bytes are copied
 * in as they arrive and every full chunk is handed out once, the rest at commit. A body that
 * fits in the first allocation never takes more, so a 4 KB message does not allocate 64 KiB;
 * past it, the buffer grows by doubling up to the chunk size, or, with a `ChunkPool`, takes a
 * whole chunk-sized buffer from the pool at once (one copy of the first bytes instead of three
 * growths, and no new 64 KiB for the GC per message) and gives it back on `release()`. The pool
 * also keeps first allocations: a 4 KB message then copies its body into a buffer an earlier
 * message gave back instead of a new 8 KiB one (issue 13: fewer bytes for the GC per message).
 */

/**
 * The buffer of a ChunkBuffer holding nothing, shared (its length is 0: nothing is written to it,
 * and it is never given to a pool): a new empty array per body and per release was two
 * allocations for each message (#13).
 */
const EMPTY = new Uint8Array(0);

/** The first allocation, in bytes. */
const FIRST_BYTES = 8 * 1024;

/** Buffers a `ChunkPool` keeps by default (512 KiB of 64 KiB chunks). */
const POOL_KEEP = 8;

/** First allocations a `ChunkPool` keeps (256 KiB): bodies of sessions writing at once. */
const FIRST_KEEP = 32;

/**
 * Chunk-sized buffers for reuse by the writers of one store: at most `keep` wait here, so what
 * it holds is bounded by that (the buffers in use belong to the bodies being written).
 */
export class ChunkPool {
  readonly chunkBytes: number;
  readonly #keep: number;
  readonly #free: Uint8Array<ArrayBuffer>[] = [];
  readonly #firstFree: Uint8Array<ArrayBuffer>[] = [];

  constructor(chunkBytes: number, keep = POOL_KEEP) {
    this.chunkBytes = chunkBytes;
    this.#keep = keep;
  }

  /** Chunk-sized buffers waiting for reuse. */
  get free(): number {
    return this.#free.length;
  }

  /** First allocations waiting for reuse. */
  get freeFirst(): number {
    return this.#firstFree.length;
  }

  /** A buffer of `chunkBytes` (contents undefined). */
  take(): Uint8Array<ArrayBuffer> {
    return this.#free.pop() ?? new Uint8Array(this.chunkBytes);
  }

  /** A buffer of the first allocation's size (contents undefined). */
  takeFirst(): Uint8Array<ArrayBuffer> {
    return this.#firstFree.pop() ?? new Uint8Array(FIRST_BYTES);
  }

  /** Gives back a buffer from `take()` or `takeFirst()`: no view into it may be used after this. */
  give(buffer: Uint8Array<ArrayBuffer>): void {
    if (buffer.length === this.chunkBytes) {
      if (this.#free.length < this.#keep) this.#free.push(buffer);
    } else if (buffer.length === FIRST_BYTES && this.#firstFree.length < FIRST_KEEP) {
      this.#firstFree.push(buffer);
    }
  }
}

export class ChunkBuffer {
  readonly #chunkBytes: number;
  readonly #pool: ChunkPool | undefined;
  #buffer: Uint8Array<ArrayBuffer> = EMPTY;
  /** `#buffer` came from the pool. */
  #pooled = false;
  #fill = 0;

  constructor(chunkBytes: number, pool?: ChunkPool) {
    this.#chunkBytes = chunkBytes;
    this.#pool = pool?.chunkBytes === chunkBytes ? pool : undefined;
  }

  /**
   * Copies `chunk` in and yields a chunk each time `chunkBytes` are held. A yielded view is valid
   * until the generator is resumed (the buffer is then reused): store it or copy it before that.
   */
  *add(chunk: Uint8Array): Generator<Uint8Array, void, void> {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#fill === this.#buffer.length) this.#grow(chunk.length - offset);
      const n = Math.min(this.#buffer.length - this.#fill, chunk.length - offset);
      this.#buffer.set(chunk.subarray(offset, offset + n), this.#fill);
      this.#fill += n;
      offset += n;
      if (this.#fill === this.#chunkBytes) yield this.take();
    }
  }

  /** The bytes held so far (a view, valid until the next `add` or `release`), and the buffer empty again. */
  take(): Uint8Array {
    const bytes = this.#buffer.subarray(0, this.#fill);
    this.#fill = 0;
    return bytes;
  }

  /** Whether any bytes are held. */
  get isEmpty(): boolean {
    return this.#fill === 0;
  }

  /** Whether adding `bytes` more would hand out a chunk. */
  fillsWith(bytes: number): boolean {
    return this.#fill + bytes >= this.#chunkBytes;
  }

  /**
   * Done with the body (committed or dropped): a pooled buffer goes back to the pool. No view
   * from `take()` may be used after this; a later `add` starts over.
   */
  release(): void {
    if (this.#pooled) this.#pool?.give(this.#buffer);
    this.#buffer = EMPTY;
    this.#pooled = false;
    this.#fill = 0;
  }

  /** A larger buffer (at most `chunkBytes`) holding the bytes so far and room for `wanted`. */
  #grow(wanted: number): void {
    const size = Math.min(
      this.#chunkBytes,
      Math.max(FIRST_BYTES, this.#buffer.length * 2, this.#fill + wanted),
    );
    const pool = this.#pool;
    const next = pool === undefined
      ? new Uint8Array(size)
      : size > FIRST_BYTES
      ? pool.take()
      : size === FIRST_BYTES
      ? pool.takeFirst()
      : new Uint8Array(size);
    next.set(this.#buffer.subarray(0, this.#fill));
    // Nothing refers to the old buffer any more (views are handed out only by take()).
    if (this.#pooled) pool?.give(this.#buffer);
    this.#buffer = next;
    this.#pooled = pool !== undefined && size >= FIRST_BYTES;
  }
}
