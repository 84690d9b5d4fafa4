/**
 * Bytes for a client link gathered into one socket write: what the sender adds during one
 * turn of the event loop (several pipelined messages, RFC 2920) goes out together when that
 * turn ends, or when the caller flushes (at `FLUSH_BYTES`, to wait for the socket). A socket
 * write costs far more than copying a few KiB (profiled on the drain: about one write per
 * message was its largest single cost), so the pieces are joined into one buffer. Writes go
 * out in the order they were made, so bytes never change order.
 */
import { clearImmediate, setImmediate } from "node:timers";
import { concatBytes } from "../wire/bytes.ts";
import type { ClientLink } from "./client/link.ts";

/** Waiting bytes from which `add` asks the caller to flush (and wait for the socket). */
export const FLUSH_BYTES = 64 * 1024;

/** Pieces waiting for one write on a link. */
export class WriteBatch {
  readonly #link: ClientLink;
  readonly #timeoutMs: number;
  #pieces: Uint8Array[] = [];
  #bytes = 0;
  #immediate: ReturnType<typeof setImmediate> | undefined;

  constructor(link: ClientLink, timeoutMs: number) {
    this.#link = link;
    this.#timeoutMs = timeoutMs;
  }

  get link(): ClientLink {
    return this.#link;
  }

  /**
   * Queues `pieces` for the write at the end of this turn; they are kept as they are until
   * written (the caller must not change them). True when `FLUSH_BYTES` or more are waiting:
   * the caller should `await flush()`, which also waits for the socket to take them.
   */
  add(pieces: readonly Uint8Array[]): boolean {
    for (const p of pieces) {
      if (p.length === 0) continue;
      this.#pieces.push(p);
      this.#bytes += p.length;
    }
    if (this.#immediate === undefined && this.#bytes > 0) {
      this.#immediate = setImmediate(() => {
        this.#immediate = undefined;
        // Not awaited: a failed write loses the link, which every later read and write sees.
        void this.flush();
      });
    }
    return this.#bytes >= FLUSH_BYTES;
  }

  /** Writes what is waiting now; false once the link is lost. */
  flush(): Promise<boolean> {
    this.#cancel();
    if (this.#bytes === 0) return Promise.resolve(!this.#link.isLost);
    const bytes = concatBytes(this.#pieces);
    this.#pieces = [];
    this.#bytes = 0;
    // The socket takes the bytes when writeEach is called, so writes keep their order.
    return this.#link.writeEach([bytes], this.#timeoutMs);
  }

  /** Drops what is waiting (the sender stopped: nobody would read the replies). */
  discard(): void {
    this.#cancel();
    this.#pieces = [];
    this.#bytes = 0;
  }

  #cancel(): void {
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#immediate = undefined;
  }
}
