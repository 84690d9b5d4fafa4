/**
 * The buffer both writers cut a streamed body into `message_chunks` rows with: bytes are copied
 * in as they arrive and every full chunk is handed out once, the rest at commit. A body that
 * fits in the first allocation never takes more, so a 4 KB message does not allocate 64 KiB;
 * past it, the buffer grows by doubling up to the chunk size, or, with a `ChunkPool`, takes a
 * whole chunk-sized buffer from the pool at once (one copy of the first bytes instead of three
 * growths, and no new 64 KiB for the GC per message) and gives it back on `release()`.
 */

/** The first allocation, in bytes. */
const FIRST_BYTES = 8 * 1024;

/** Buffers a `ChunkPool` keeps by default (512 KiB of 64 KiB chunks). */
const POOL_KEEP = 8;

/**
 * Chunk-sized buffers for reuse by the writers of one store: at most `keep` wait here, so what
 * it holds is bounded by that (the buffers in use belong to the bodies being written).
 */
export class ChunkPool {
  readonly chunkBytes: number;
  readonly #keep: number;
  readonly #free: Uint8Array<ArrayBuffer>[] = [];

  constructor(chunkBytes: number, keep = POOL_KEEP) {
    this.chunkBytes = chunkBytes;
    this.#keep = keep;
  }

  /** Buffers waiting for reuse. */
  get free(): number {
    return this.#free.length;
  }

  /** A buffer of `chunkBytes` (contents undefined). */
  take(): Uint8Array<ArrayBuffer> {
    return this.#free.pop() ?? new Uint8Array(this.chunkBytes);
  }

  /** Gives back a buffer from `take()`: no view into it may be used after this. */
  give(buffer: Uint8Array<ArrayBuffer>): void {
    if (this.#free.length < this.#keep && buffer.length === this.chunkBytes) {
      this.#free.push(buffer);
    }
  }
}

export class ChunkBuffer {
  readonly #chunkBytes: number;
  readonly #pool: ChunkPool | undefined;
  #buffer = new Uint8Array(0);
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

  /**
   * Done with the body (committed or dropped): a pooled buffer goes back to the pool. No view
   * from `take()` may be used after this; a later `add` starts over.
   */
  release(): void {
    if (this.#pooled) this.#pool?.give(this.#buffer);
    this.#buffer = new Uint8Array(0);
    this.#pooled = false;
    this.#fill = 0;
  }

  /** A larger buffer (at most `chunkBytes`) holding the bytes so far and room for `wanted`. */
  #grow(wanted: number): void {
    const size = Math.min(
      this.#chunkBytes,
      Math.max(FIRST_BYTES, this.#buffer.length * 2, this.#fill + wanted),
    );
    const fromPool = this.#pool !== undefined && size > FIRST_BYTES;
    const next = fromPool ? this.#pool.take() : new Uint8Array(size);
    next.set(this.#buffer.subarray(0, this.#fill));
    this.#buffer = next;
    this.#pooled = fromPool;
  }
}
