/**
 * The write buffer of one body relayed to the local server: dot-stuffed pieces are copied into
 * one buffer (the only copy of the body), written each time it fills; the first is sized by
 * SIZE= when announced, so a small body goes out in one write with its end marker and room is
 * left for the next commands (LocalConnection.hold).
 */

/** Body bytes gathered into one write to the local server. */
export const LOCAL_WRITE_BYTES = 64 * 1024;
/**
 * Room after a small body (sized by SIZE=) for the next message's MAIL, RCPT and DATA, which
 * go out in the same write under PIPELINING (LocalConnection.hold).
 */
const NEXT_COMMANDS_ROOM = 512;

/** Writes a full buffer (flushed: the socket is done with it when it resolves); false once lost. */
export type BodyWrite = (bytes: Uint8Array) => Promise<boolean>;

/** One body's buffer; see the module comment. */
export class LocalBody {
  readonly #declaredSize: number | undefined;
  readonly #write: BodyWrite;
  #out: Uint8Array | undefined;
  #outBytes = 0;
  #isFirstBuffer = true;

  constructor(declaredSize: number | undefined, write: BodyWrite) {
    this.#declaredSize = declaredSize;
    this.#write = write;
  }

  /**
   * Copies `pieces` into the write buffer and writes it each time it fills. The write is
   * flushed, so the same buffer is filled again: one buffer per transaction, whatever the size
   * of the body. False once the link is lost.
   */
  async put(pieces: readonly Uint8Array[]): Promise<boolean> {
    for (const p of pieces) {
      for (let at = 0; at < p.length;) {
        const out = this.#out ??= new Uint8Array(this.#bufferSize());
        const n = Math.min(p.length - at, out.length - this.#outBytes);
        out.set(p.subarray(at, at + n), this.#outBytes);
        this.#outBytes += n;
        at += n;
        if (this.#outBytes < out.length) continue;
        if (!(await this.writeOut())) return false;
        // A first buffer sized by SIZE= that filled up: the body is bigger, take a full one.
        if (out.length < LOCAL_WRITE_BYTES) this.#out = undefined;
      }
    }
    return true;
  }

  /** Writes what the buffer holds; the buffer is empty after it. */
  async writeOut(): Promise<boolean> {
    const out = this.#out?.subarray(0, this.#outBytes);
    this.#outBytes = 0;
    if (out === undefined || out.length === 0) return true;
    return await this.#write(out);
  }

  /**
   * Hands the buffer over unwritten (its first `length` bytes are the body's last; the rest is
   * room for the next commands) and forgets it; undefined when it holds nothing.
   */
  take(): { readonly buffer: Uint8Array; readonly length: number } | undefined {
    const buffer = this.#out;
    const length = this.#outBytes;
    this.#out = undefined;
    this.#outBytes = 0;
    return buffer === undefined || length === 0 ? undefined : { buffer, length };
  }

  /** Drops the buffer (the body ended or was refused). */
  drop(): void {
    this.#out = undefined;
    this.#outBytes = 0;
  }

  /**
   * LOCAL_WRITE_BYTES, or less for a body announced smaller (SIZE=): a 4 KB message does not
   * need a 64 KiB buffer. Room for its dots and end marker (more than that only costs a write)
   * and for the next commands.
   */
  #bufferSize(): number {
    const size = this.#declaredSize;
    const isFirst = this.#isFirstBuffer;
    this.#isFirstBuffer = false;
    if (size === undefined || !isFirst) return LOCAL_WRITE_BYTES;
    return Math.min(LOCAL_WRITE_BYTES, size + Math.ceil(size / 64) + 64 + NEXT_COMMANDS_ROOM);
  }
}
