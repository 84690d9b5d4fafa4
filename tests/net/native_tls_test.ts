/**
 * TLS on a NativeConn (node:tls over a Duplex on the Deno.TcpConn, issue 13): plaintext the
 * client pipelined after its STARTTLS line and that our read-ahead already took in is counted
 * and dropped, never given to the TLS layer nor to a read (RFC 3207 §4.2, CVE-2011-0411);
 * destroy() ends a handshake the peer never starts; close() under TLS delivers every byte, then
 * the end; both ends of a STARTTLS can be NativeConns.
 */
import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import { ConnClosedError, NativeConn, TimeoutError } from "../../src/net/conn.ts";
import type { Conn } from "../../src/net/conn.ts";
import { listen } from "../../src/net/listener.ts";
import { loadSecureContext } from "../../src/net/tls_context.ts";
import { testCaOrSkip } from "../_helpers/certs.ts";
import type { TestCa } from "../_helpers/certs.ts";
import { until } from "../_helpers/wait_until.ts";
import { readAll } from "../_helpers/socket_pair.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A listener handing its NativeConns out, a raw client connected to it, and the test CA. */
async function withServer(
  name: string,
  fn: (ctx: { ca: TestCa; server: () => Promise<Conn>; peer: Deno.TcpConn }) => Promise<void>,
): Promise<void> {
  const ca = await testCaOrSkip(name);
  if (ca === undefined) return;
  const conns: Conn[] = [];
  const l = await listen({
    host: "127.0.0.1",
    port: 0,
    onConn: (c) => conns.push(c),
    native: true,
  });
  const peer = await Deno.connect({ hostname: "127.0.0.1", port: l.port });
  try {
    await fn({
      ca,
      server: async () => {
        await until("the accept", () => conns.length > 0, 5_000, 5);
        return conns[0] as Conn;
      },
      peer,
    });
  } finally {
    for (const c of conns) c.destroy();
    try {
      peer.close();
    } catch {
      // closed by the test
    }
    await l.close();
    await ca.cleanup();
  }
}

/** STARTTLS with `conn` as the server and a NativeConn over `peer` as the client. */
async function bothUnderTls(ca: TestCa, conn: Conn, peer: Deno.TcpConn): Promise<NativeConn> {
  const client = new NativeConn(peer);
  const upgrading = conn.startTlsServer({
    secureContext: loadSecureContext(ca.certPath, ca.keyPath),
  });
  const t = await client.startTlsClient({ servername: "localhost", ca: ca.caCertPem });
  await upgrading;
  assertEquals([t.authorized, t.discardedBytes, client.isSecure], [true, 0, true]);
  return client;
}

/** Reads from `conn` until `text` has arrived. */
async function readUntil(conn: { read(b: Uint8Array): Promise<number | null> }, text: string) {
  const buf = new Uint8Array(4096);
  let got = "";
  while (!got.includes(text)) {
    const n = await conn.read(buf);
    if (n === null) break;
    got += dec.decode(buf.subarray(0, n));
  }
  return got;
}

Deno.test("NativeConn STARTTLS: plaintext pipelined after STARTTLS and read ahead is discarded and counted (#13)", async () => {
  await withServer("NativeConn STARTTLS injection", async ({ ca, server, peer }) => {
    const conn = await server();
    await peer.write(enc.encode("STARTTLS\r\n"));
    assertEquals(dec.decode((await conn.read(5_000)) ?? new Uint8Array()), "STARTTLS\r\n");
    // The injection: commands sent in plaintext behind STARTTLS, before any 220 came back.
    const injected = enc.encode("RSET\r\nMAIL FROM:<evil@attacker.test>\r\n");
    await peer.write(injected);
    await until("the read-ahead to take them", () => conn.readableBytes === injected.length);
    await conn.write(enc.encode("220 2.0.0 Ready to start TLS\r\n"), { flush: true });
    const upgrading = conn.startTlsServer({
      secureContext: loadSecureContext(ca.certPath, ca.keyPath),
    });
    assertEquals(await readUntil(peer, "\r\n"), "220 2.0.0 Ready to start TLS\r\n");
    const tls = await Deno.startTls(peer, { hostname: "localhost", caCerts: [ca.caCertPem] });
    await tls.write(enc.encode("EHLO after.test\r\n"));
    const upgrade = await upgrading;
    assertEquals(upgrade.discardedBytes, injected.length);
    assertEquals(conn.isSecure, true);
    // The first bytes read under TLS are the client's, nothing of the injection.
    assertEquals(dec.decode((await conn.read(5_000)) ?? new Uint8Array()), "EHLO after.test\r\n");
    assertEquals(conn.readableBytes, 0);
    await conn.write(enc.encode("250 after\r\n"));
    assertEquals(await readUntil(tls, "\r\n"), "250 after\r\n");
    tls.close();
  });
});

Deno.test("NativeConn: destroy() ends a TLS handshake the peer never starts (#13)", async () => {
  await withServer("NativeConn destroy during handshake", async ({ ca, server, peer }) => {
    const conn = await server();
    const upgrading = conn.startTlsServer({
      secureContext: loadSecureContext(ca.certPath, ca.keyPath),
    });
    await new Promise((r) => setTimeout(r, 50));
    const started = performance.now();
    conn.destroy();
    await rejects(upgrading, ConnClosedError);
    ok(performance.now() - started < 5_000);
    ok(conn.closed);
    // The peer sees the end of the connection.
    assertEquals(await peer.read(new Uint8Array(16)), null);
  });
});

Deno.test("NativeConn under TLS, both ends native: close() delivers every byte, then the end (#13)", async () => {
  await withServer("NativeConn TLS close", async ({ ca, server, peer }) => {
    const conn = await server();
    const client = await bothUnderTls(ca, conn, peer);
    const size = 4 * 1024 * 1024;
    const bytes = new Uint8Array(size).map((_, i) => i % 241);
    const sent = conn.write(bytes);
    const closing = sent.then(() => conn.close());
    const got = await readAll(client);
    await closing;
    assertEquals(got.length, size);
    assertEquals(got, bytes);
    client.destroy();
  });
});

Deno.test("NativeConn under TLS: a peer that never reads is cut at the write deadline, memory bounded (#13)", async () => {
  await withServer("NativeConn TLS write deadline", async ({ ca, server, peer }) => {
    const conn = await server();
    const client = await bothUnderTls(ca, conn, peer);
    // node:tls takes every write at once; without the bound, 64 MiB would sit in memory and
    // every write (the flushed one too) would succeed although the peer reads nothing.
    const chunk = new Uint8Array(1024 * 1024);
    let written = 0;
    const started = performance.now();
    await rejects(
      (async () => {
        for (; written < 64; written++) await conn.write(chunk, { timeoutMs: 300 });
        await conn.write(chunk, { timeoutMs: 300, flush: true });
      })(),
      TimeoutError,
    );
    ok(performance.now() - started < 30_000);
    ok(written < 16, `${written} MiB were taken before the deadline`);
    ok(conn.closed);
    await rejects(conn.write(enc.encode("x")), ConnClosedError);
    client.destroy();
  });
});
