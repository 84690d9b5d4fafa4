/**
 * Conn as a TLS client over real sockets: the server name may be a host name or an IP address
 * (RFC 6066 forbids an IP in SNI, so none is sent, but the certificate is still checked against
 * the IP), and a failed handshake is a rejected promise, never a hang.
 */
import { ok as assert, rejects } from "node:assert/strict";
import { connect } from "../../src/net/conn.ts";
import { listen } from "../../src/net/listener.ts";
import { loadSecureContext } from "../../src/net/tls_context.ts";
import type { Conn } from "../../src/net/conn.ts";
import { makeTestCa } from "../_helpers/certs.ts";

async function withTlsServer(
  fn: (port: number, caPem: string) => Promise<void>,
): Promise<void> {
  const ca = await makeTestCa();
  if (ca === undefined) {
    if (Deno.env.get("CI") === "true") throw new Error("openssl is needed for this test");
    // deno-lint-ignore no-console -- a skip states its reason (docs/architecture.md "Conventions")
    console.log("skip: Conn TLS client tests: openssl not installed");
    return;
  }
  const conns: Conn[] = [];
  const listener = await listen({
    host: "127.0.0.1",
    port: 0,
    secureContext: loadSecureContext(ca.certPath, ca.keyPath),
    onConn: (c) => {
      conns.push(c);
      // Like a session: greet, then read until the client leaves, then close.
      (async () => {
        await c.write(new TextEncoder().encode("220 hello\r\n"));
        while ((await c.read(5000)) !== null) { /* discard */ }
      })().catch(() => {}).finally(() => c.destroy());
    },
  });
  try {
    await fn(listener.port, ca.caCertPem);
  } finally {
    for (const c of conns) c.destroy();
    await listener.close();
    await ca.cleanup();
  }
}

Deno.test("connect() with implicit TLS verifies a certificate for an IP address given as the server name", async () => {
  await withTlsServer(async (port, caPem) => {
    const { conn, tls } = await connect({
      host: "127.0.0.1",
      port,
      tls: { servername: "127.0.0.1", ca: caPem, timeoutMs: 5000 },
    });
    try {
      assert(tls?.authorized, "the certificate names 127.0.0.1 and is signed by the test CA");
      const first = await conn.read(5000);
      assert(first !== null && new TextDecoder().decode(first).startsWith("220"));
    } finally {
      conn.destroy();
    }
  });
});

Deno.test("connect() with implicit TLS verifies a host name", async () => {
  await withTlsServer(async (port, caPem) => {
    const { conn, tls } = await connect({
      host: "127.0.0.1",
      port,
      tls: { servername: "localhost", ca: caPem, timeoutMs: 5000 },
    });
    try {
      assert(tls?.authorized);
      const first = await conn.read(5000);
      assert(first !== null && new TextDecoder().decode(first).startsWith("220"));
    } finally {
      conn.destroy();
    }
  });
});

Deno.test("connect() rejects, and does not hang, when the certificate is not trusted", async () => {
  await withTlsServer(async (port) => {
    await rejects(
      connect({ host: "127.0.0.1", port, tls: { servername: "localhost", timeoutMs: 5000 } }),
    );
  });
});

Deno.test("an implicit-TLS listener closes cleanly when a client leaves right after its handshake", async () => {
  await withTlsServer(async (port, caPem) => {
    const { conn } = await connect({
      host: "127.0.0.1",
      port,
      tls: { servername: "localhost", ca: caPem, timeoutMs: 5000 },
    });
    conn.destroy();
  });
});
