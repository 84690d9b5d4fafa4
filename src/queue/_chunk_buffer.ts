/**
 * The buffer both writers cut a streamed body into `message_chunks` rows with: bytes are copied
 * in as they arrive and every full chunk is handed out once, the rest at commit. It grows (by
 * doubling) up to the chunk size as bytes come, so a 4 KB message does not allocate 64 KiB.
 */

/** The first allocation, in bytes. */
const FIRST_BYTES = 8 * 1024;

export class ChunkBuffer {
  readonly #chunkBytes: number;
  #buffer = new Uint8Array(0);
  #fill = 0;

  constructor(chunkBytes: number) {
    this.#chunkBytes = chunkBytes;
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

  /** The bytes held so far (a view, valid until the next `add`), and the buffer empty again. */
  take(): Uint8Array {
    const bytes = this.#buffer.subarray(0, this.#fill);
    this.#fill = 0;
    return bytes;
  }

  /** Whether any bytes are held. */
  get isEmpty(): boolean {
    return this.#fill === 0;
  }

  /** A larger buffer (at most `chunkBytes`) holding the bytes so far and room for `wanted`. */
  #grow(wanted: number): void {
    const size = Math.min(
      this.#chunkBytes,
      Math.max(FIRST_BYTES, this.#buffer.length * 2, this.#fill + wanted),
    );
    const next = new Uint8Array(size);
    next.set(this.#buffer.subarray(0, this.#fill));
    this.#buffer = next;
  }
}
