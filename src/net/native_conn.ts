/**
 * NativeConn: a Conn over a Deno.TcpConn, without node:net (its compatibility layer cost
 * ~100-150 µs per message of an MX session and allocated a 64 KiB buffer per read). Reads come
 * from a read-ahead pump that stops while more than HIGH_WATER_BYTES wait unread; writes go
 * through _tcp_writer.ts (ordered, complete, bounded, each under a deadline).
 *
 * TLS (STARTTLS either way, implicit TLS) runs node:tls over a Duplex on this connection
 * (_tcp_duplex.ts; the take-over is in _native_tls.ts): Deno.startTls is client-only and
 * refuses a pinned self-signed certificate.
 * After the handshake every call goes to a SocketConn over the TLSSocket. What the pump had
 * received before the upgrade is plaintext the peer sent ahead of the handshake (RFC 3207
 * §4.2, CVE-2011-0411): it is counted and dropped, never given to the TLS layer nor to a read.
 */
import type tls from "node:tls";

import { ConnClosedError } from "./conn_types.ts";
import type {
  Conn,
  TlsClientParams,
  TlsServerParams,
  TlsUpgradeResult,
  WriteOptions,
} from "./conn_types.ts";
import {
  type ConnNames,
  DEFAULT_WRITE_TIMEOUT_MS,
  HIGH_WATER_BYTES,
  normalizeAddress,
} from "./_conn_common.ts";
import { ReadBuffers } from "./_read_buffers.ts";
import { ReadQueue } from "./_read_queue.ts";
import { TcpWriter } from "./_tcp_writer.ts";
import type { SocketConn } from "./socket_conn.ts";
import type { TcpDuplex } from "./_tcp_duplex.ts";
import { NativeTls, type TlsParts } from "./_native_tls.ts";

/** close() with writes still queued waits for them at most this long, then drops. */
const CLOSE_FLUSH_MS = 5_000;

let nextId = 1;

/** Options of a NativeConn. */
export interface NativeConnOptions {
  /**
   * Read ahead of the reads asked for (the default), up to HIGH_WATER_BYTES: `readableBytes`
   * then counts what the peer sent meanwhile (a pipelining peer's next commands). Without, the
   * socket is read only when a read finds nothing queued: a session that ends after its last
   * command has no read in flight to cancel at close (a cancelled read costs an error with its
   * stack trace, for every connection of an MX), and `readableBytes` counts only what the last
   * socket read brought and was not taken yet. Plain TCP only: once TLS starts it reads ahead.
   */
  readonly readAhead?: boolean;
  /**
   * At close(), the connection's small read buffer goes to the next connection (_read_buffers.ts
   * `recycle`: the views handed out of it are detached first). Only for a connection whose
   * reader's consumers keep no view once they returned (serve's SMTP listeners, whose LineReader
   * frees what it consumed: `releaseConsumed`). Plain TCP only; never while a read is in flight.
   */
  readonly recycleReadBuffer?: boolean;
}

/** Conn over a Deno.TcpConn. */
export class NativeConn implements Conn {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly #tcp: Deno.TcpConn;
  readonly #writer: TcpWriter;
  readonly #buffers = new ReadBuffers();
  readonly #queue = new ReadQueue();
  /** The pump's read is in flight. */
  #pumping = false;
  /** The pump stopped for backpressure. */
  #paused = false;
  /** From startTls* on: the TLS take-over (the pump feeds it, and its Conn carries every call). */
  #link: NativeTls | undefined;
  #closed = false;
  /** The first close()'s end (later calls return it). */
  #closing: Promise<void> | undefined;
  /** The TcpConn is closed. */
  #dropped = false;
  #local: { address: string; port: number } | undefined;
  readonly #readAhead: boolean;
  readonly #recycleReadBuffer: boolean;
  /** The timeout of the read waiting now (one read at a time: the reader's). */
  #waitTimeoutMs: number | undefined;

  constructor(tcp: Deno.TcpConn, opts: NativeConnOptions = {}) {
    this.id = "n" + (nextId++).toString(36);
    this.#tcp = tcp;
    const remote = tcp.remoteAddr;
    this.remoteAddress = normalizeAddress(remote.hostname);
    this.remotePort = remote.port;
    this.#writer = new TcpWriter(tcp, (err) => {
      // A timeout drops the connection as a close would; a failed write is the peer's loss.
      if (err instanceof ConnClosedError) this.#queue.fail(err);
      this.#drop();
    });
    tcp.setNoDelay(true);
    this.#readAhead = opts.readAhead ?? true;
    this.#recycleReadBuffer = opts.recycleReadBuffer ?? false;
    if (this.#readAhead) this.#pump();
    else this.#paused = true;
  }

  get localAddress(): string {
    return this.#localName().address;
  }

  get localPort(): number {
    return this.#localName().port;
  }

  #localName(): { address: string; port: number } {
    if (this.#local === undefined) {
      const local = this.#tcp.localAddr;
      this.#local = { address: normalizeAddress(local.hostname), port: local.port };
    }
    return this.#local;
  }

  /** After the handshake: the connection under TLS. */
  get #tls(): SocketConn | undefined {
    return this.#link?.secure;
  }

  get readableBytes(): number {
    return this.#tls?.readableBytes ?? this.#queue.bytes;
  }

  get isSecure(): boolean {
    return this.#tls !== undefined;
  }

  /** The end or an error is queued behind the unread bytes (ReadQueue.inputEnded). */
  get inputEnded(): boolean {
    return this.#queue.inputEnded;
  }

  get closed(): boolean {
    return this.#closed || this.#dropped || (this.#tls?.closed ?? false);
  }

  /** Bytes written and not yet in the kernel (tests). */
  get pendingWriteBytes(): number {
    return this.#writer.pendingBytes;
  }

  /**
   * Starts the read pump: each read's end calls #onRead or #onReadError, which read on while
   * the connection reads ahead. Callbacks bound once, not an async loop (without read-ahead
   * each read began a new async frame).
   */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    this.#paused = false;
    this.#readNext();
  }

  #readNext(): void {
    let reading: Promise<number | null>;
    try {
      reading = this.#tcp.read(this.#buffers.space());
    } catch (err) {
      reading = Promise.reject(err);
    }
    reading.then(this.#onRead, this.#onReadError);
  }

  readonly #onRead = (n: number | null): void => {
    if (n === null) {
      this.#pumping = false;
      this.#deliverEnd();
      return;
    }
    const more = this.#deliver(this.#buffers.take(n));
    if (!more || !this.#readsAhead()) {
      this.#pumping = false;
      this.#paused = true;
      return;
    }
    this.#readNext();
  };

  readonly #onReadError = (err: unknown): void => {
    this.#pumping = false;
    // Our own close ends a read in flight: that is an end, not an error.
    if (this.#dropped) return this.#deliverEnd();
    this.#deliverError(new ConnClosedError(err instanceof Error ? err.message : String(err)));
  };

  /** Whether the pump reads on before a read asks (TLS always does: its layer reads for it). */
  #readsAhead(): boolean {
    return this.#readAhead || this.#link !== undefined;
  }

  /** Restarts a pump stopped by backpressure (or, without read-ahead, after each chunk). */
  #resume(): void {
    if (this.#paused && !this.#dropped && !this.#tlsFull(HIGH_WATER_BYTES / 2)) this.#pump();
  }

  /**
   * Whether more than `limit` decrypted bytes wait unread. Deno's node:tls keeps reading its
   * transport when the TLSSocket is paused, so the bound on unread input under TLS is kept here,
   * at the pump.
   */
  #tlsFull(limit: number): boolean {
    return this.#link !== undefined && this.#link.isFull(limit);
  }

  /** Hands a chunk on; false: stop reading until it is taken. */
  #deliver(chunk: Uint8Array): boolean {
    if (this.#link !== undefined) return this.#link.deliver(chunk);
    return this.#queue.push(chunk) <= HIGH_WATER_BYTES;
  }

  #deliverEnd(): void {
    this.#link?.end();
    this.#queue.end();
  }

  #deliverError(err: Error): void {
    this.#link?.fail(err);
    this.#queue.fail(err);
  }

  /**
   * The next chunk: at once when one is queued, else after the wait. Not an async function:
   * an MX session reads once per command, and each read began an async frame of its own.
   */
  read(timeoutMs?: number): Promise<Uint8Array | null> {
    const secure = this.#tls;
    if (secure !== undefined) return this.#readTls(secure, timeoutMs);
    let chunk: Uint8Array | null | undefined;
    try {
      chunk = this.#takeQueued();
    } catch (err) {
      return Promise.reject(err);
    }
    if (chunk !== undefined) return Promise.resolve(chunk);
    if (this.#paused) this.#resume();
    this.#waitTimeoutMs = timeoutMs;
    return this.#queue.wait(timeoutMs).then(this.#afterWait);
  }

  /**
   * A queued chunk (a read-ahead pump stopped by backpressure restarts once half is read);
   * null at the end; undefined when none. Throws ConnClosedError after a failure.
   */
  #takeQueued(): Uint8Array | null | undefined {
    const chunk = this.#queue.take();
    if (chunk !== undefined && this.#paused && this.#readAhead) {
      if (this.#queue.bytes <= HIGH_WATER_BYTES / 2) this.#resume();
    }
    return chunk;
  }

  /** After a read's wait: what came, or (woken with nothing, or under TLS now) a new read. */
  readonly #afterWait = (): Uint8Array | null | Promise<Uint8Array | null> => {
    // A read that waited through the handshake continues under TLS.
    if (this.#tls !== undefined) return this.read(this.#waitTimeoutMs);
    const chunk = this.#takeQueued();
    return chunk !== undefined ? chunk : this.read(this.#waitTimeoutMs);
  };

  async #readTls(secure: SocketConn, timeoutMs: number | undefined): Promise<Uint8Array | null> {
    const chunk = await secure.read(timeoutMs);
    if (this.#paused) this.#resume();
    return chunk;
  }

  write(bytes: Uint8Array, opts: WriteOptions = {}): Promise<void> {
    const link = this.#link;
    if (link?.secure !== undefined) {
      return link.boundWrite(link.secure.write(bytes, opts), opts.flush ?? false, opts.timeoutMs);
    }
    if (this.#closed || this.#dropped) {
      return Promise.reject(new ConnClosedError("connection closed"));
    }
    return this.#writer.write(bytes, opts.timeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS, opts.flush);
  }

  writeRecords(
    pieces: readonly Uint8Array[],
    opts: { readonly timeoutMs?: number } = {},
  ): Promise<void> {
    const link = this.#link;
    if (link?.secure !== undefined) {
      return link.boundWrite(link.secure.writeRecords(pieces, opts), true, opts.timeoutMs);
    }
    if (this.#closed || this.#dropped) {
      return Promise.reject(new ConnClosedError("connection closed"));
    }
    return this.#writer.writeEach(pieces, opts.timeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS);
  }

  startTlsServer(params: TlsServerParams): Promise<TlsUpgradeResult> {
    return this.#upgrade(
      (parts, duplex) => parts.tlsServerSocket(duplex, params),
      "secure",
      undefined,
      (_, discardedBytes) => ({ discardedBytes, authorized: true }),
    );
  }

  startTlsClient(params: TlsClientParams): Promise<TlsUpgradeResult> {
    return this.#upgrade(
      (parts, duplex) => parts.tlsClientSocket(duplex, params),
      "secureConnect",
      params.timeoutMs,
      (secure, discardedBytes, parts) => parts.clientResult(secure, discardedBytes),
    );
  }

  /** TLS over this connection (either role): _native_tls.ts. */
  #upgrade(
    wrap: (parts: TlsParts, duplex: TcpDuplex) => tls.TLSSocket,
    event: "secure" | "secureConnect",
    timeoutMs: number | undefined,
    result: (secure: tls.TLSSocket, discardedBytes: number, parts: TlsParts) => TlsUpgradeResult,
  ): Promise<TlsUpgradeResult> {
    if (this.#closed || this.#dropped || this.#link !== undefined) {
      const started = this.#link !== undefined;
      return Promise.reject(
        new ConnClosedError(started ? "TLS already started" : "connection closed"),
      );
    }
    const names: ConnNames = {
      remoteAddress: this.remoteAddress,
      remotePort: () => this.remotePort,
      local: () => this.#localName(),
    };
    this.#link = new NativeTls({
      writer: this.#writer,
      queue: this.#queue,
      names,
      isGone: () => this.#closed || this.#dropped,
      resume: () => this.#resume(),
      closeWrite: () => this.#closeWrite(),
      drop: () => this.#drop(),
      destroy: () => this.destroy(),
    });
    return this.#link.upgrade(wrap, event, timeoutMs, result);
  }

  peerCertificateFingerprint(): string | undefined {
    return this.#tls?.peerCertificateFingerprint();
  }

  exportKeyingMaterial(length: number, label: string): Uint8Array | undefined {
    return this.#tls?.exportKeyingMaterial(length, label);
  }

  close(): Promise<void> {
    // A second close() while the first still flushes waits for the same end.
    return this.#closing ??= this.#close();
  }

  #close(): Promise<void> {
    // A read still waiting ends with the connection, not with its deadline.
    this.#queue.dropDeadline();
    // The session is over: its reader is done with the buffer (no read of the socket in it).
    if (this.#recycleReadBuffer && !this.#pumping && this.#link === undefined) {
      this.#buffers.recycle();
    }
    if (this.#tls !== undefined) {
      this.#closed = true;
      return this.#tls.close().then(() => this.#drop());
    }
    if (this.#closed || this.#dropped) {
      this.#closed = true;
      this.#drop();
      return Promise.resolve();
    }
    this.#closed = true;
    if (this.#writer.pendingBytes === 0) {
      // The usual end of a session: every byte is in the kernel. The FIN goes out first
      // (shutdown), then the socket is closed; nothing to wait for, so no timer. close(2)
      // alone, with input the peer sent still unread (a client that pipelined past QUIT, one
      // still sending after our 421), would send a reset instead of the FIN, and a peer that
      // has not read our last reply yet may lose it.
      this.#finish();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#drop();
        resolve();
      }, CLOSE_FLUSH_MS);
      this.#writer.idle().then(() => {
        clearTimeout(timer);
        this.#finish();
        resolve();
      });
    });
  }

  /** FIN, then release. */
  #finish(): void {
    this.#closeWrite();
    this.#drop();
  }

  /** FIN, unless the socket is released already. */
  #closeWrite(): void {
    if (this.#dropped) return;
    try {
      this.#tcp.closeWrite();
    } catch {
      // the peer is gone already: nothing to end
    }
  }

  destroy(): void {
    this.#closed = true;
    this.#link?.abort();
    this.#tls?.destroy();
    this.#drop();
  }

  /** Releases the socket at once (idempotent); waiting reads end, waiting writes fail. */
  #drop(): void {
    if (!this.#dropped) {
      this.#dropped = true;
      this.#writer.close();
      try {
        this.#tcp.close();
      } catch {
        // closed already
      }
    }
    this.#queue.end();
  }
}
