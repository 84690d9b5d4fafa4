/**
 * The TLS take-over of a NativeConn (native_conn.ts), either role: node:tls (loaded on first
 * use) over a Duplex fed by the conn's read pump and written through its ordered writer. What
 * the pump received before the upgrade is dropped and counted by the conn's queue; what comes
 * in while node:tls loads waits here (`early`) for the TLS layer, never for a read. After the
 * handshake `secure` carries every call; writes under TLS are bounded here (`boundWrite`).
 */
import type net from "node:net";
import type tls from "node:tls";

import { ConnClosedError, TimeoutError } from "./conn_types.ts";
import type { TlsUpgradeResult } from "./conn_types.ts";
import type { SocketConn } from "./socket_conn.ts";
import { type ConnNames, DEFAULT_WRITE_TIMEOUT_MS, HIGH_WATER_BYTES } from "./_conn_common.ts";
import type { ReadQueue } from "./_read_queue.ts";
import { HIGH_WATER_WRITE_BYTES, type TcpWriter } from "./_tcp_writer.ts";
import type { TcpDuplex } from "./_tcp_duplex.ts";

/**
 * node:tls and what runs it over this connection, loaded when TLS starts: a plain connection
 * never pays for loading node's stream, net and tls modules (~25 ms of a process's start-up).
 */
function loadTls() {
  return Promise.all([
    import("./_tls_upgrade.ts"),
    import("./_tcp_duplex.ts"),
    import("./socket_conn.ts"),
  ]).then(([upgrade, { TcpDuplex }, { SocketConn }]) => ({ ...upgrade, TcpDuplex, SocketConn }));
}
/** The loaded TLS modules. */
export type TlsParts = Awaited<ReturnType<typeof loadTls>>;

/** What the take-over needs from its connection. */
export interface NativeTlsHost {
  readonly writer: TcpWriter;
  /** The plain read queue: cleared at the start, woken once TLS carries the reads. */
  readonly queue: ReadQueue;
  readonly names: ConnNames;
  /** The connection was closed or dropped. */
  isGone(): boolean;
  /** Restarts the read pump if it stopped. */
  resume(): void;
  /** Sends the FIN (unless the connection was dropped meanwhile). */
  closeWrite(): void;
  /** Releases the socket at once. */
  drop(): void;
  /** Closes at once, ending a handshake in flight. */
  destroy(): void;
}

/** One connection's TLS: started by `upgrade`, then its layer's transport and its Conn. */
export class NativeTls {
  readonly #host: NativeTlsHost;
  /** From the start until node:tls has loaded: the bytes the pump read meanwhile. */
  #early: Uint8Array[] | undefined = [];
  /** After loading: where the pump's bytes go (the TLS layer's transport). */
  #duplex: TcpDuplex | undefined;
  /** After the handshake: the connection under TLS. */
  secure: SocketConn | undefined;
  #abort: (() => void) | undefined;

  constructor(host: NativeTlsHost) {
    this.#host = host;
  }

  /** Whether more than `limit` decrypted bytes wait unread. */
  isFull(limit: number): boolean {
    return this.secure !== undefined && this.secure.readableBytes > limit;
  }

  /** Hands a chunk the pump read on; false: stop reading until it is taken. */
  deliver(chunk: Uint8Array): boolean {
    if (this.#early !== undefined) {
      // The peer's first TLS bytes, while node:tls loads (one dynamic import): kept for it.
      this.#early.push(chunk);
      return true;
    }
    return (this.#duplex?.push(chunk) ?? false) && !this.isFull(HIGH_WATER_BYTES);
  }

  /** The end of the stream came. */
  end(): void {
    this.#duplex?.push(null);
  }

  /** The connection failed. */
  fail(err: Error): void {
    this.#duplex?.destroy(err);
  }

  /** Fails a handshake in flight at once. */
  abort(): void {
    this.#abort?.();
  }

  /**
   * TLS over the connection; resolves once the handshake is done (then `secure` is set). On
   * failure the connection is destroyed.
   */
  upgrade(
    wrap: (parts: TlsParts, duplex: TcpDuplex) => tls.TLSSocket,
    event: "secure" | "secureConnect",
    timeoutMs: number | undefined,
    result: (secure: tls.TLSSocket, discardedBytes: number, parts: TlsParts) => TlsUpgradeResult,
  ): Promise<TlsUpgradeResult> {
    const host = this.#host;
    const discardedBytes = host.queue.clear();
    // Without read-ahead the pump may be stopped: the peer's first TLS bytes are read now.
    host.resume();
    return loadTls().then((parts) => {
      if (host.isGone()) throw new ConnClosedError("connection closed");
      const duplex = this.#takeOver(parts);
      const setAbort = (abort: (() => void) | undefined) => this.#abort = abort;
      const limit = timeoutMs ?? parts.DEFAULT_TLS_TIMEOUT_MS;
      return parts.startTls(() => wrap(parts, duplex), event, limit, setAbort).then((secure) => {
        this.secure = new parts.SocketConn(secure as net.Socket, {
          isSecure: true,
          names: host.names,
        });
        // However the TLS socket ends (a write deadline destroys it), the TCP one goes with it.
        secure.once("close", () => host.drop());
        // A read that waited through the handshake continues under TLS.
        host.queue.wake();
        return result(secure, discardedBytes, parts);
      });
    }).catch((err) => {
      host.destroy();
      throw err;
    });
  }

  /**
   * Gives the connection to the TLS layer: from here on the pump feeds the Duplex only,
   * starting with what came in while node:tls loaded.
   */
  #takeOver(parts: TlsParts): TcpDuplex {
    const host = this.#host;
    const writer = host.writer;
    const duplex = new parts.TcpDuplex({
      resume: () => host.resume(),
      write: (bytes) => writer.write(bytes, DEFAULT_WRITE_TIMEOUT_MS, true),
      pendingBytes: () => writer.pendingBytes,
      end: () => writer.idle().then(() => host.closeWrite()),
      drop: () => host.drop(),
    });
    this.#duplex = duplex;
    for (const chunk of this.#early ?? []) duplex.push(chunk);
    this.#early = undefined;
    if (host.queue.error !== undefined) duplex.destroy(host.queue.error);
    else if (host.queue.ended) duplex.push(null);
    return duplex;
  }

  /**
   * After a write under TLS: waits until at most HIGH_WATER_WRITE_BYTES (nothing, with
   * `flush`) wait to reach the kernel (_tcp_duplex.ts: node:tls itself does not hold a write
   * back). At the deadline the connection is dropped.
   */
  async boundWrite(written: Promise<void>, flush: boolean, timeoutMs?: number): Promise<void> {
    await written;
    const duplex = this.#duplex as TcpDuplex;
    const limit = flush ? 0 : HIGH_WATER_WRITE_BYTES;
    if (duplex.backlog <= limit) return;
    try {
      await duplex.waitForBacklog(limit, timeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS);
    } catch (err) {
      // A peer that stops reading must not hold the session forever.
      if (err instanceof TimeoutError) this.#host.destroy();
      throw err;
    }
  }
}
