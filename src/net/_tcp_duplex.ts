/**
 * A node:stream Duplex over a native connection (native_conn.ts), for node:tls to run on: a
 * TLSSocket takes any Duplex as its transport (`new tls.TLSSocket(duplex, { isServer })`,
 * `tls.connect({ socket: duplex })`). The connection's read pump pushes what it receives into
 * it; every write goes through the connection's ordered writer.
 *
 * Deno's node:tls takes every write at once and calls back before its record reached this
 * Duplex, whether or not the peer reads (measured on Deno 2.9.6: 64 MiB "written" to a peer
 * that read nothing, in 0.3 s). So the bound on queued writes and the write deadline under TLS
 * live here: `waitForBacklog` waits until what sits in this Duplex and in the writer is at
 * most a limit, or fails at the deadline.
 */
import { Duplex } from "node:stream";

import { ConnClosedError, TimeoutError } from "./conn_types.ts";

/** What the Duplex needs from its connection. */
export interface DuplexTransport {
  /** The TLS layer wants bytes: restart the read pump if backpressure stopped it. */
  resume(): void;
  /** Writes `bytes` completely; resolves once they are in the kernel. */
  write(bytes: Uint8Array): Promise<void>;
  /** Bytes given to `write` and not yet in the kernel. */
  pendingBytes(): number;
  /** Sends the FIN once every write is in the kernel. */
  end(): Promise<void>;
  /** Drops the connection at once. */
  drop(): void;
}

interface BacklogWaiter {
  readonly limit: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** A Duplex whose bytes come from `push` calls and go to `transport`. */
export class TcpDuplex extends Duplex {
  readonly #transport: DuplexTransport;
  #waiters: BacklogWaiter[] = [];

  constructor(transport: DuplexTransport) {
    // Bytes are bytes: never decoded, never turned into strings.
    super({ allowHalfOpen: true, decodeStrings: false });
    this.#transport = transport;
  }

  /** Bytes written to this Duplex and not yet in the kernel (the chunk in flight counted twice). */
  get backlog(): number {
    return this.writableLength + this.#transport.pendingBytes();
  }

  /**
   * Resolves once the backlog is at most `limit`; rejects with TimeoutError after `timeoutMs`
   * (the caller drops the connection), or with ConnClosedError when the Duplex is destroyed.
   */
  waitForBacklog(limit: number, timeoutMs: number): Promise<void> {
    if (this.backlog <= limit) return Promise.resolve();
    if (this.destroyed) return Promise.reject(new ConnClosedError("connection closed"));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new TimeoutError("write"));
      }, timeoutMs);
      const waiter: BacklogWaiter = {
        limit,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  override _read(): void {
    this.#transport.resume();
  }

  override _write(
    chunk: Uint8Array,
    _encoding: string,
    callback: (error?: Error | null) => void,
  ): void {
    this.#transport.write(chunk).then(() => {
      // The stream takes the chunk off its length in the callback: the backlog is current
      // after it.
      callback();
      this.#progress();
    }, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#transport.end().then(() => callback(), callback);
  }

  override _destroy(err: Error | null, callback: (error: Error | null) => void): void {
    this.#transport.drop();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(new ConnClosedError("connection closed while writing"));
    callback(err);
  }

  /** Wakes the waits whose limit the backlog is down to. */
  #progress(): void {
    if (this.#waiters.length === 0) return;
    const backlog = this.backlog;
    const still: BacklogWaiter[] = [];
    for (const w of this.#waiters) {
      if (backlog <= w.limit) w.resolve();
      else still.push(w);
    }
    this.#waiters = still;
  }
}
