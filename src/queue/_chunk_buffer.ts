/**
 * The fixed-size buffer both writers cut a streamed body into `message_chunks` rows with: bytes
 * are copied in as they arrive and every full buffer is handed out once, the rest at commit.
 */
export class ChunkBuffer {
  readonly #buffer: Uint8Array;
  #fill = 0;

  constructor(chunkBytes: number) {
    this.#buffer = new Uint8Array(chunkBytes);
  }

  /**
   * Copies `chunk` in and yields the buffer each time it is full. A yielded view is valid until
   * the generator is resumed (the buffer is then reused): store it or copy it before that.
   */
  *add(chunk: Uint8Array): Generator<Uint8Array, void, void> {
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(this.#buffer.length - this.#fill, chunk.length - offset);
      this.#buffer.set(chunk.subarray(offset, offset + n), this.#fill);
      this.#fill += n;
      offset += n;
      if (this.#fill === this.#buffer.length) yield this.take();
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
}
