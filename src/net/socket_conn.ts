/**
 * SocketConn: a Conn over a node:net or node:tls socket. Connections start as NativeConn
 * (native_conn.ts) and continue on a SocketConn over the TLSSocket after a TLS upgrade; unix
 * sockets (local LMTP) are node:net from the start.
 * Invariant: bytes are never decoded here; every read and write has a deadline.
 */
import net from "node:net";
import tls from "node:tls";
import { Buffer } from "node:buffer";

import { ConnClosedError } from "./conn_types.ts";
import { writeBytes, writeEachRecord } from "./_conn_write.ts";
import { ReadQueue } from "./_read_queue.ts";
import { InputGate, MAX_UNREAD_BYTES, tcpHandleOf } from "./_socket_input.ts";
import {
  clientResult,
  DEFAULT_TLS_TIMEOUT_MS,
  startTls,
  tlsClientSocket,
  tlsServerSocket,
} from "./_tls_upgrade.ts";
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

export { type ConnNames, DEFAULT_WRITE_TIMEOUT_MS, HIGH_WATER_BYTES, normalizeAddress };

let nextId = 1;

/** Conn over a node:net (or node:tls) socket. */
export class SocketConn implements Conn {
  readonly id: string;
  #socket: net.Socket;
  readonly #queue = new ReadQueue();
  /** Holds input back while more than HIGH_WATER_BYTES wait unread (_socket_input.ts). */
  readonly #gate = new InputGate();
  #closed = false;
  #secure: boolean;
  /** Ends a TLS handshake in progress (set only while one is). */
  #abortUpgrade: (() => void) | undefined;
  readonly remoteAddress: string;
  /** Where the remote port and the local address are read from, on demand. */
  readonly #names: ConnNames;
  #local: { address: string; port: number } | undefined;

  /**
   * `names`: the addresses when `socket` cannot tell them (TLS over a Duplex, native_conn.ts);
   * by default they are the socket's.
   */
  constructor(socket: net.Socket, opts: { isSecure?: boolean; names?: ConnNames } = {}) {
    this.id = (nextId++).toString(36);
    this.#socket = socket;
    this.#secure = opts.isSecure ?? false;
    // Every session logs the peer's address. The port and the local address are read when
    // asked (rarely): each is a system call at every connection of an MX otherwise.
    this.#names = opts.names ?? socketNames(socket);
    this.remoteAddress = this.#names.remoteAddress;
    socket.setNoDelay(true);
    this.#attach(socket);
  }

  get remotePort(): number {
    return this.#names.remotePort();
  }

  get localAddress(): string {
    return this.#localName().address;
  }

  get localPort(): number {
    return this.#localName().port;
  }

  /** Read once (node asks the kernel at every read of a local property). */
  #localName(): { address: string; port: number } {
    this.#local ??= this.#names.local();
    return this.#local;
  }

  get readableBytes(): number {
    return this.#queue.bytes;
  }

  get isSecure(): boolean {
    return this.#secure;
  }

  /** The end or an error is queued behind the unread bytes (ReadQueue.inputEnded). */
  get inputEnded(): boolean {
    return this.#queue.inputEnded;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #onData = (data: Uint8Array): void => {
    // node gives Buffer views into a pool; keep them as they are (no copy, never decoded).
    const unread = this.#queue.push(data);
    if (unread > HIGH_WATER_BYTES) this.#holdInput(unread);
  };

  /** Stops reading until half is read; past MAX_UNREAD_BYTES (a transport that read on) drops. */
  #holdInput(unread: number): void {
    if (unread <= MAX_UNREAD_BYTES) return this.#gate.hold(this.#socket);
    this.#queue.fail(
      new ConnClosedError(`peer sent ${unread} bytes that were not read (${MAX_UNREAD_BYTES} max)`),
    );
    this.destroy();
  }
  #onEnd = (): void => this.#queue.end();
  #onError = (err: Error): void => this.#queue.fail(err);
  #onClose = (): void => {
    this.#closed = true;
    this.#queue.end();
  };

  #attach(socket: net.Socket): void {
    socket.on("data", this.#onData);
    this.#attachEnds(socket);
  }

  #attachEnds(socket: net.Socket): void {
    socket.on("end", this.#onEnd);
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
  }

  #detach(socket: net.Socket): void {
    socket.off("data", this.#onData);
    socket.off("end", this.#onEnd);
    socket.off("error", this.#onError);
    socket.off("close", this.#onClose);
  }

  async read(timeoutMs?: number): Promise<Uint8Array | null> {
    for (;;) {
      const chunk = this.#queue.take();
      if (chunk !== undefined) {
        if (this.#gate.isHeld && this.#queue.bytes <= HIGH_WATER_BYTES / 2) {
          this.#gate.release(this.#socket);
        }
        return chunk;
      }
      await this.#queue.wait(timeoutMs);
    }
  }

  write(bytes: Uint8Array, opts: WriteOptions = {}): Promise<void> {
    if (this.#closed || this.#socket.destroyed) {
      return Promise.reject(new ConnClosedError("connection closed"));
    }
    return writeBytes(this.#socket, bytes, opts.timeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS, opts.flush);
  }

  writeRecords(
    pieces: readonly Uint8Array[],
    opts: { readonly timeoutMs?: number } = {},
  ): Promise<void> {
    if (this.#closed || this.#socket.destroyed) {
      return Promise.reject(new ConnClosedError("connection closed"));
    }
    return writeEachRecord(this.#socket, pieces, opts.timeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS);
  }

  /** Takes the socket out of flowing mode and drops plaintext that arrived after STARTTLS. */
  #prepareUpgrade(): number {
    this.#socket.pause();
    this.#detach(this.#socket);
    // Under TLS the TCP handle is what stops reading (_socket_input.ts).
    this.#gate.reset(tcpHandleOf(this.#socket));
    return this.#queue.clear();
  }

  startTlsServer(params: TlsServerParams): Promise<TlsUpgradeResult> {
    const discardedBytes = this.#prepareUpgrade();
    return this.#upgrade(() => tlsServerSocket(this.#socket, params), "secure", undefined)
      .then(() => ({ discardedBytes, authorized: true }));
  }

  startTlsClient(params: TlsClientParams): Promise<TlsUpgradeResult> {
    const discardedBytes = this.#prepareUpgrade();
    return this.#upgrade(() => tlsClientSocket(this.#socket, params), "secureConnect", params)
      .then((secure) => clientResult(secure, discardedBytes));
  }

  /** TLS over the socket; reads and writes continue on the TLS socket. */
  #upgrade(
    wrap: () => tls.TLSSocket,
    event: "secure" | "secureConnect",
    params: { readonly timeoutMs?: number } | undefined,
  ): Promise<tls.TLSSocket> {
    const timeoutMs = params?.timeoutMs ?? DEFAULT_TLS_TIMEOUT_MS;
    const wrapped = () => {
      const secure = wrap();
      // Read from the start: what the peer sends right behind its handshake can be decrypted
      // before "secure" is emitted, and a TLSSocket nobody reads keeps it all (_socket_input.ts).
      secure.on("data", this.#onData);
      return secure;
    };
    return startTls(wrapped, event, timeoutMs, (abort) => this.#abortUpgrade = abort).then(
      (secure) => {
        this.#socket = secure;
        this.#secure = true;
        this.#attachEnds(secure);
        return secure;
      },
      (err) => {
        this.destroy();
        throw err;
      },
    );
  }

  peerCertificateFingerprint(): string | undefined {
    const s = this.#socket;
    if (!(s instanceof tls.TLSSocket)) return undefined;
    const cert = s.getPeerCertificate();
    const fp = cert?.fingerprint256;
    return typeof fp === "string" && fp !== "" ? fp.toUpperCase() : undefined;
  }

  exportKeyingMaterial(length: number, label: string): Uint8Array | undefined {
    const s = this.#socket;
    if (!(s instanceof tls.TLSSocket)) return undefined;
    try {
      // RFC 9266 (TLS 1.3): an absent context and an empty one give the same exporter value.
      return new Uint8Array(s.exportKeyingMaterial(length, label, Buffer.alloc(0)));
    } catch {
      return undefined;
    }
  }

  close(): Promise<void> {
    // A read still waiting ends with the socket's close, not with its deadline.
    this.#queue.dropDeadline();
    const socket = this.#socket;
    if (this.#closed || socket.destroyed) {
      this.#closed = true;
      return Promise.resolve();
    }
    if (!this.#secure && socket.writableLength === 0) {
      // Plain TCP with every byte written already in the kernel (the usual end of a session:
      // the last reply went out at once): the FIN goes out at once (shutdown), then the socket
      // is closed. Nothing to wait for, so no timer: an MX armed and cleared one at every
      // connection. The FIN must come first: close(2) alone, with input the peer sent still
      // unread (a client that pipelined past QUIT, one still sending after our 421), sends a
      // reset instead of it, and a peer that has not read our last reply yet may lose it.
      // TLS takes the path below (close_notify first).
      socket.end(() => socket.destroy());
      this.#closed = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        socket.destroy();
        resolve();
      }, 5_000);
      socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end(() => {
        // Our side is flushed; do not wait for the peer's FIN forever.
        socket.destroy();
      });
    }).then(() => {
      this.#closed = true;
    });
  }

  destroy(): void {
    this.#closed = true;
    this.#abortUpgrade?.();
    this.#socket.destroy();
    this.#queue.wake();
  }
}

/** The addresses of a node:net socket (the TCP one: under TLS too). */
function socketNames(tcp: net.Socket): ConnNames {
  return {
    remoteAddress: normalizeAddress(tcp.remoteAddress ?? ""),
    // node keeps the peer's name from the remoteAddress read above: no second system call.
    remotePort: () => tcp.remotePort ?? 0,
    local: () => ({ address: normalizeAddress(tcp.localAddress ?? ""), port: tcp.localPort ?? 0 }),
  };
}
