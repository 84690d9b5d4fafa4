/**
 * An in-memory Conn pair for session tests: what one side writes, the other reads, in the
 * same chunks (so tests can control chunking). TLS upgrades are not supported in memory.
 */
import type { Conn, TlsUpgradeResult, WriteOptions } from "../../src/net/conn.ts";
import { TimeoutError } from "../../src/net/conn.ts";

class MemoryConn implements Conn {
  readonly id: string;
  readonly remoteAddress = "127.0.0.1";
  readonly remotePort = 40000;
  readonly localAddress = "127.0.0.1";
  readonly localPort = 25;
  readonly isSecure = false;
  peer: MemoryConn | undefined;
  #chunks: Uint8Array[] = [];
  #ended = false;
  #closed = false;
  #waiter: (() => void) | undefined;
  /** Everything this side wrote, for assertions. */
  readonly written: Uint8Array[] = [];
  /** The options of each write, in the order of `written`. */
  readonly writeOptions: (WriteOptions | undefined)[] = [];

  constructor(id: string) {
    this.id = id;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes delivered and not read yet (as SocketConn counts its queue). */
  get readableBytes(): number {
    return this.#chunks.reduce((n, c) => n + c.length, 0);
  }

  deliver(chunk: Uint8Array | null): void {
    if (chunk === null) this.#ended = true;
    else this.#chunks.push(chunk);
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  async read(timeoutMs?: number): Promise<Uint8Array | null> {
    for (;;) {
      const c = this.#chunks.shift();
      if (c) return c;
      if (this.#ended) return null;
      await new Promise<void>((resolve, reject) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        this.#waiter = () => {
          if (timer !== undefined) clearTimeout(timer);
          resolve();
        };
        if (timeoutMs !== undefined) {
          timer = setTimeout(() => {
            this.#waiter = undefined;
            reject(new TimeoutError("read"));
          }, timeoutMs);
        }
      });
    }
  }

  write(bytes: Uint8Array, opts?: WriteOptions): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("connection closed"));
    const copy = bytes.slice();
    this.written.push(copy);
    this.writeOptions.push(opts);
    this.peer?.deliver(copy);
    return Promise.resolve();
  }

  async writeRecords(pieces: readonly Uint8Array[]): Promise<void> {
    for (const piece of pieces) if (piece.length > 0) await this.write(piece);
  }

  startTlsServer(): Promise<TlsUpgradeResult> {
    return Promise.reject(new Error("TLS is not supported on a memory connection"));
  }

  startTlsClient(): Promise<TlsUpgradeResult> {
    return Promise.reject(new Error("TLS is not supported on a memory connection"));
  }

  exportKeyingMaterial(): Uint8Array | undefined {
    return undefined;
  }

  close(): Promise<void> {
    this.destroy();
    return Promise.resolve();
  }

  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.peer?.deliver(null);
    this.deliver(null);
  }
}

/** Two connected in-memory Conns: `server` and `client` ends. */
export function connPair(): { server: MemoryConn; client: MemoryConn } {
  const server = new MemoryConn("mem-server");
  const client = new MemoryConn("mem-client");
  server.peer = client;
  client.peer = server;
  return { server, client };
}

export type { MemoryConn };
