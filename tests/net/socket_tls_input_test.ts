/**
 * Unread input under TLS on the default path (SocketConn over node:tls) is bounded: a peer that
 * keeps sending while nothing is read is held back at the TCP socket, as on plain TCP. Deno's
 * node:tls reads its transport whether or not the TLSSocket is paused: before the fix a peer
 * could hand 64 MiB (all of it, in ~0.3 s) to a connection that read nothing, and the process
 * kept it (+126 MB RSS). Each role is tested: the implicit-TLS server, the STARTTLS server and
 * the TLS client (`fetch`, outbound). After the peer stalls, everything it sent is read back
 * whole and in order.
 */
import { deepStrictEqual as assertEquals, fail, ok as assert } from "node:assert/strict";
import { connect } from "../../src/net/conn.ts";
import type { Conn } from "../../src/net/conn.ts";
import { listen } from "../../src/net/listener.ts";
import { loadSecureContext } from "../../src/net/tls_context.ts";
import { HIGH_WATER_BYTES } from "../../src/net/socket_conn.ts";
import { makeTestCa, type TestCa } from "../_helpers/certs.ts";
import { Flood, floodByte } from "../_helpers/flood.ts";

const TOTAL = 64 * 1024 * 1024;
/** What the peer may get into the kernel's buffers (both ends) and TLS's before it stalls. */
const MAX_TAKEN = 24 * 1024 * 1024;
/** Unread bytes a held connection may keep: the limit plus the last read's decrypted records. */
const MAX_UNREAD = HIGH_WATER_BYTES + 128 * 1024;

/** Reads `conn` to TOTAL bytes and checks each against the pattern. */
async function readAll(conn: Conn): Promise<void> {
  let at = 0;
  while (at < TOTAL) {
    const chunk = await conn.read(10_000);
    assert(chunk !== null, `stream ended at ${at}`);
    for (let j = 0; j < chunk.length; j++) {
      if (chunk[j] !== floodByte(at + j)) fail(`byte ${at + j} differs`);
    }
    at += chunk.length;
  }
  assertEquals(at, TOTAL);
}

/**
 * The peer floods `conn` while nothing reads it: it must stall well short of TOTAL with little
 * waiting unread here; then `conn` reads everything, whole and in order.
 */
async function floodThenRead(
  peer: Deno.Conn,
  conn: Conn,
  closeServer: () => unknown,
): Promise<void> {
  try {
    const flood = new Flood((b) => peer.write(b), TOTAL);
    await flood.stalled();
    assert(flood.sent < MAX_TAKEN, `the peer got ${flood.sent} bytes taken while nothing read`);
    const unread = conn.readableBytes ?? 0;
    assert(unread <= MAX_UNREAD, `${unread} bytes wait unread (at most ${MAX_UNREAD})`);
    await Promise.all([readAll(conn), flood.done]);
  } finally {
    peer.close();
    conn.destroy();
    await closeServer();
  }
}

async function withCa(name: string, fn: (ca: TestCa) => Promise<void>): Promise<void> {
  const ca = await makeTestCa();
  if (ca === undefined) {
    if (Deno.env.get("CI") === "true") throw new Error("openssl is needed for this test");
    // deno-lint-ignore no-console -- a skip states its reason (docs/architecture.md "Conventions")
    console.log(`skip: ${name}: openssl not installed`);
    return;
  }
  try {
    await fn(ca);
  } finally {
    await ca.cleanup();
  }
}

/** A node listener (SocketConn) whose first connection is handed over, optionally under TLS. */
async function acceptOne(
  ca: TestCa,
  implicitTls: boolean,
): Promise<{ port: number; conn: Promise<Conn>; close: () => Promise<void> }> {
  let resolve!: (c: Conn) => void;
  const conn = new Promise<Conn>((r) => resolve = r);
  const listener = await listen({
    host: "127.0.0.1",
    port: 0,
    ...(implicitTls ? { secureContext: loadSecureContext(ca.certPath, ca.keyPath) } : {}),
    onConn: resolve,
  });
  return { port: listener.port, conn, close: () => listener.close() };
}

Deno.test("SocketConn, implicit-TLS server: a peer sending 64 MiB that nobody reads is held back at the socket, then read whole", async () => {
  await withCa("implicit TLS input bound", async (ca) => {
    const server = await acceptOne(ca, true);
    const peer = await Deno.connectTls({
      hostname: "127.0.0.1",
      port: server.port,
      caCerts: [ca.caCertPem],
    });
    const conn = await server.conn;
    await floodThenRead(peer, conn, server.close);
  });
});

Deno.test("SocketConn, STARTTLS server: a peer sending 64 MiB that nobody reads is held back at the socket, then read whole", async () => {
  await withCa("STARTTLS input bound", async (ca) => {
    const server = await acceptOne(ca, false);
    const tcp = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const conn = await server.conn;
    const upgraded = conn.startTlsServer({
      secureContext: loadSecureContext(ca.certPath, ca.keyPath),
    });
    const peer = await Deno.startTls(tcp, { hostname: "localhost", caCerts: [ca.caCertPem] });
    await Promise.all([peer.handshake(), upgraded]);
    await floodThenRead(peer, conn, server.close);
  });
});

Deno.test("SocketConn, TLS client: a server sending 64 MiB that nobody reads is held back at the socket, then read whole", async () => {
  await withCa("TLS client input bound", async (ca) => {
    const tlsListener = Deno.listenTls({
      hostname: "127.0.0.1",
      port: 0,
      cert: await Deno.readTextFile(ca.certPath),
      key: await Deno.readTextFile(ca.keyPath),
    });
    const accepted = tlsListener.accept();
    const { conn } = await connect({
      host: "127.0.0.1",
      port: tlsListener.addr.port,
      tls: { servername: "localhost", ca: ca.caCertPem, timeoutMs: 5000 },
    });
    const peer = await accepted;
    await floodThenRead(peer, conn, () => tlsListener.close());
  });
});
