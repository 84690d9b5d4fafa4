/**
 * SocketConn's input bounds at N and N+1 over a stand-in socket: past HIGH_WATER_BYTES unread it
 * stops reading (and reads again once half is read); a transport that reads on anyway (what
 * Deno's node:tls did) is dropped past MAX_UNREAD_BYTES, with what it queued still readable and
 * then a ConnClosedError that says why.
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { EventEmitter } from "node:events";
import type net from "node:net";
import { ConnClosedError } from "../../src/net/conn_types.ts";
import { HIGH_WATER_BYTES, SocketConn } from "../../src/net/socket_conn.ts";
import { MAX_UNREAD_BYTES } from "../../src/net/_socket_input.ts";

/** The parts of a node:net socket SocketConn reads from; pause() is only counted. */
class StandInSocket extends EventEmitter {
  pauses = 0;
  resumes = 0;
  destroyed = false;
  pause(): this {
    this.pauses++;
    return this;
  }
  resume(): this {
    this.resumes++;
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}

function open(): { socket: StandInSocket; conn: SocketConn } {
  const socket = new StandInSocket();
  const names = {
    remoteAddress: "127.0.0.1",
    remotePort: () => 1,
    local: () => ({ address: "127.0.0.1", port: 2 }),
  };
  return { socket, conn: new SocketConn(socket as unknown as net.Socket, { names }) };
}

/** Emits `bytes` as data events of at most 64 KiB. */
function feed(socket: StandInSocket, bytes: number): void {
  for (let left = bytes; left > 0; left -= 65536) {
    socket.emit("data", new Uint8Array(Math.min(65536, left)));
  }
}

Deno.test("SocketConn stops reading past HIGH_WATER_BYTES unread (N: reads on, N+1: paused) and reads again once half is read", async () => {
  const { socket, conn } = open();
  feed(socket, HIGH_WATER_BYTES);
  assertEquals(socket.pauses, 0);
  feed(socket, 1);
  assertEquals(socket.pauses, 1);
  feed(socket, 1);
  assertEquals(socket.pauses, 1, "held once, not at every chunk");
  let read = 0;
  while (conn.readableBytes > HIGH_WATER_BYTES / 2) read += (await conn.read(1000))!.length;
  assertEquals(socket.resumes, 1);
  assert(read > 0);
  conn.destroy();
});

Deno.test("SocketConn drops a transport that reads on past MAX_UNREAD_BYTES unread (N: open, N+1: dropped with a reason)", async () => {
  const { socket, conn } = open();
  feed(socket, MAX_UNREAD_BYTES);
  assert(!conn.closed && !socket.destroyed, "at the limit the connection stays");
  feed(socket, 1);
  assert(conn.closed && socket.destroyed, "one byte past it, dropped");
  let read = 0;
  await rejects(async () => {
    for (;;) read += (await conn.read(1000))!.length;
  }, (err: unknown) => err instanceof ConnClosedError && /not read/.test(err.message));
  assertEquals(read, MAX_UNREAD_BYTES + 1, "what came before the drop is still read");
});
