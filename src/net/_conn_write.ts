/**
 * The write side of a SocketConn (socket_conn.ts): bytes onto a node:net/node:tls socket, each
 * write under a deadline. A peer that stops reading must not hold the session forever, so a write
 * that is still waiting when its deadline passes destroys the socket. The caller checks that
 * the connection is open first.
 */
import type net from "node:net";

import { ConnClosedError, TimeoutError } from "./conn_types.ts";

/** The result of every write the socket took at once (one settled promise, shared). */
const WRITTEN: Promise<void> = Promise.resolve();

/**
 * One write. Without `flush` it resolves once the socket took the bytes (at once, or on
 * "drain" when it buffered them); with `flush`, once they were handed to the kernel.
 */
export function writeBytes(
  socket: net.Socket,
  bytes: Uint8Array,
  timeoutMs: number,
  flush: boolean | undefined,
): Promise<void> {
  if (!flush && socket.writableLength === 0) {
    // Hot path (every reply line): nothing queued, so no drain to wait for and no timer to
    // arm. A later write error surfaces as the socket's "error"/"close" on the next read or
    // write.
    if (socket.write(bytes)) return WRITTEN;
    return waitForDrain(socket, timeoutMs);
  }
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off("drain", onDrain);
      socket.off("close", onClose);
      if (err) reject(new ConnClosedError(err.message));
      else resolve();
    };
    const onDrain = () => finish();
    const onClose = () => finish(new Error("connection closed while writing"));
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      socket.off("drain", onDrain);
      socket.off("close", onClose);
      // A peer that stops reading must not hold the session forever.
      socket.destroy();
      reject(new TimeoutError("write"));
    }, timeoutMs);
    socket.once("close", onClose);
    const accepted = socket.write(bytes, (err) => {
      if (flush) finish(err);
      else if (err) finish(err);
    });
    if (!flush) {
      if (accepted) finish();
      else socket.once("drain", onDrain);
    }
  });
}

/**
 * Writes each non-empty piece in a TLS record of its own (Conn.writeRecords), under one
 * deadline for the whole list.
 */
export function writeEachRecord(
  socket: net.Socket,
  pieces: readonly Uint8Array[],
  timeoutMs: number,
): Promise<void> {
  // One promise, timer and close listener for the whole list, not one per line: the
  // per-line path (fetchmail's sessions) writes about 60 pieces per 4 KB message.
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let i = 0;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off("close", onClose);
      if (err) reject(err);
      else resolve();
    };
    const onClose = () => finish(new ConnClosedError("connection closed while writing"));
    const timer = setTimeout(() => {
      finish(new TimeoutError("write"));
      // A peer that stops reading must not hold the session forever.
      socket.destroy();
    }, timeoutMs);
    socket.once("close", onClose);
    // Each write is issued from the previous one's callback: only then has the TLS layer
    // sealed it into a record of its own (writes queued together share one record).
    const next = (err?: Error | null): void => {
      if (settled) return;
      if (err) return finish(new ConnClosedError(err.message));
      while (i < pieces.length && pieces[i]?.length === 0) i++;
      const piece = pieces[i++];
      if (piece === undefined) return finish();
      socket.write(piece, next);
    };
    next();
  });
}

/** Waits for "drain" after a write the socket buffered, with a deadline. */
function waitForDrain(socket: net.Socket, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off("drain", onDrain);
      socket.off("close", onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new ConnClosedError("connection closed while writing"));
    const timer = setTimeout(() => {
      // A peer that stops reading must not hold the session forever.
      socket.destroy();
      done(new TimeoutError("write"));
    }, timeoutMs);
    socket.once("drain", onDrain);
    socket.once("close", onClose);
  });
}
