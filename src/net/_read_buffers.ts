/**
 * The read buffers of a NativeConn's pump (native_conn.ts): where the next socket read goes,
 * and the bytes it brought as a chunk that stays as it is. A session's commands and a small
 * body come from one 16 KiB buffer, handed on as views with no allocation per read; a read
 * that fills it switches the connection to a 64 KiB buffer whose reads are copied out.
 */

/** The small buffer (one per connection, and another once less than MIN_READ_SPACE is left). */
const READ_BUFFER_BYTES = 16 * 1024;
/** Below this much space left in the small buffer, the next read gets a new one. */
const MIN_READ_SPACE = 4 * 1024;
/**
 * The buffer of a connection whose read filled the small one (a bulk transfer: a drain's
 * customer, a large body): fewer reads (measured: 16 KiB reads took ~15% longer to receive
 * 256 MiB than node:net's 64 KiB ones).
 */
const BULK_READ_BUFFER_BYTES = 64 * 1024;

/**
 * Small buffers given back by connections that ended (`recycle`), for the next ones: a new
 * 16 KiB buffer cost ~5 µs (zeroed memory and its accounting), the most of any single step of an
 * MX connection's own work. Bounded: at most MAX_SPARE_BUFFERS × 16 KiB wait here.
 */
const spare: Uint8Array[] = [];
const MAX_SPARE_BUFFERS = 64;

/** One connection's read buffers. */
export class ReadBuffers {
  #buffer: Uint8Array | undefined;
  /** Where the next read goes in the small #buffer (what is before it was handed on). */
  #at = 0;

  /** Where the next read goes; call take() with its count before asking again. */
  space(): Uint8Array {
    const buffer = this.#buffer ??= spare.pop() ?? new Uint8Array(READ_BUFFER_BYTES);
    return this.#at === 0 ? buffer : buffer.subarray(this.#at);
  }

  /**
   * The `n` bytes the read into space() brought, as a chunk that stays as it is. In the small
   * buffer, a view: the next read goes after it, and a buffer with less than MIN_READ_SPACE left
   * is left to the chunks that view it. A read that filled the small buffer is handed on whole,
   * and the bulk buffer takes over; its reads are copied out, each chunk all of its ArrayBuffer
   * (a reader may free it once consumed: line_reader.ts `releaseConsumed`).
   */
  take(n: number): Uint8Array {
    const buffer = this.#buffer as Uint8Array;
    if (buffer.byteLength === BULK_READ_BUFFER_BYTES) return buffer.slice(0, n);
    const at = this.#at;
    if (at === 0 && n === buffer.byteLength) {
      this.#buffer = new Uint8Array(BULK_READ_BUFFER_BYTES);
      return buffer;
    }
    const end = at + n;
    if (buffer.byteLength - end < MIN_READ_SPACE) {
      this.#buffer = undefined;
      this.#at = 0;
    } else {
      this.#at = end;
    }
    return buffer.subarray(at, end);
  }

  /**
   * Gives the small buffer to the next connection: its memory moves to a new ArrayBuffer
   * (`transfer()`), so every view handed out of it is detached and reads as empty, never as the
   * next connection's bytes. Only once no read is in flight into it, and only for a reader
   * whose consumers keep no view of what they were given (line_reader.ts `releaseConsumed`).
   */
  recycle(): void {
    const buffer = this.#buffer;
    this.#buffer = undefined;
    this.#at = 0;
    if (buffer === undefined || buffer.byteLength !== READ_BUFFER_BYTES) return;
    if (spare.length >= MAX_SPARE_BUFFERS || !(buffer.buffer instanceof ArrayBuffer)) return;
    if (buffer.buffer.detached) return;
    spare.push(new Uint8Array(buffer.buffer.transfer()));
  }
}
