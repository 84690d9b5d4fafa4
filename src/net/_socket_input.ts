/**
 * How a SocketConn (socket_conn.ts) holds back input while more than HIGH_WATER_BYTES wait
 * unread. A plain node:net socket pauses. Under node:tls that is not enough on Deno 2.9: its
 * TLS layer reads the TCP handle under it whether or not the TLSSocket (or the TCP socket) is
 * paused, and keeps what it decrypted (measured: 64 MiB sent to a TLSSocket that nothing read
 * were all taken, +126 MB of RSS). So under TLS the TCP handle itself stops reading
 * (`readStop`, what node's own streams do when a buffer is full) and starts again once half of
 * the backlog was read; the TLSSocket keeps flowing, so every byte it decrypts reaches the
 * conn's queue, where MAX_UNREAD_BYTES is the last bound should the handle ever read on.
 */
import type net from "node:net";

import { HIGH_WATER_BYTES } from "./_conn_common.ts";

/**
 * Unread input past which the connection is dropped: only a transport that ignored being held
 * back gets there (a held TCP handle delivers at most what its last read brought: one chunk).
 */
export const MAX_UNREAD_BYTES = 4 * HIGH_WATER_BYTES;

/** The reading side of node's stream handle (the libuv-like TCP handle of a node:net socket). */
interface StreamHandle {
  readStart(): number;
  readStop(): number;
}

/**
 * The TCP handle under a node:net socket that node:tls is about to wrap, when it has one that
 * can stop and start reading (every TCP socket of Deno's node:net); undefined otherwise.
 */
export function tcpHandleOf(socket: net.Socket): StreamHandle | undefined {
  const handle = (socket as unknown as { _handle?: Partial<StreamHandle> | null })._handle;
  if (typeof handle?.readStop !== "function" || typeof handle.readStart !== "function") {
    return undefined;
  }
  return handle as StreamHandle;
}

/** Holds a socket's input back and lets it go again: the TCP handle under TLS, else the socket. */
export class InputGate {
  #held = false;
  /** Under TLS over node:net: the TCP handle that stops reading. */
  #handle: StreamHandle | undefined;

  /** Whether input is held back now. */
  get isHeld(): boolean {
    return this.#held;
  }

  /** From now on `handle` (TLS over its socket) is what stops; nothing is held any more. */
  reset(handle: StreamHandle | undefined): void {
    this.#held = false;
    this.#handle = handle;
  }

  /** Stops reading `socket` (or the TCP handle under it). */
  hold(socket: net.Socket): void {
    if (this.#held) return;
    this.#held = true;
    if (this.#handle !== undefined) this.#handle.readStop();
    else socket.pause();
  }

  /** Reads `socket` (or the TCP handle under it) again. */
  release(socket: net.Socket): void {
    if (!this.#held) return;
    this.#held = false;
    if (this.#handle !== undefined) this.#handle.readStart();
    else socket.resume();
  }
}
