/**
 * (review wt17-rev1) Silent connections to an implicit-TLS port (a handshake flood) count against
 * `smtp.max_connections[_per_ip]` from the accept on, not only once their handshake is done:
 * past the limits they are closed at once. Before, each waited out its 60 s handshake deadline,
 * holding a descriptor, whatever the limits: one address could take every descriptor of the
 * process (and every port of serve with them). Real `serve`, real sockets.
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { testCaOrSkip } from "../_helpers/certs.ts";
import { toolTest } from "../_helpers/tools.ts";
import { withServe } from "./_serve.ts";

const NAME = "implicit TLS handshakes count against the connection limits";
const PER_IP = 3;
const SILENT = 12;

/** Whether the server closes `conn` within `ms` (it never sends before our ClientHello). */
async function isClosedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const timer = setTimeout(() => conn.close(), ms);
  try {
    const n = await conn.read(new Uint8Array(64)).catch(() => -1);
    return n === null;
  } finally {
    clearTimeout(timer);
  }
}

/** The greeting of an implicit-TLS client, retried (refused: closed) for at most `ms`. */
async function tlsGreeting(port: number, caCert: string, ms: number): Promise<string> {
  const until = Date.now() + ms;
  let last = "";
  while (Date.now() < until) {
    try {
      const tls = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caCert] });
      try {
        const buf = new Uint8Array(512);
        const n = await tls.read(buf);
        last = new TextDecoder().decode(buf.subarray(0, n ?? 0));
        if (last !== "") return last;
      } finally {
        tls.close();
      }
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}

await toolTest(`${NAME} (wt17-rev1)`, ["openssl"], async () => {
  const ca = await testCaOrSkip(NAME);
  if (ca === undefined) return;
  try {
    await withServe({
      tls: { cert: ca.certPath, key: ca.keyPath },
      smtp: {
        listen: [{ address: "127.0.0.1:0", tls: "implicit" }],
        max_connections: 50,
        max_connections_per_ip: PER_IP,
      },
    }, async (server) => {
      const port = server.smtp[0]!.port;
      const silent: Deno.Conn[] = [];
      for (let i = 0; i < SILENT; i++) {
        silent.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      }
      const closed = await Promise.all(silent.map((c) => isClosedWithin(c, 5_000)));
      // Those within the limit wait for their ClientHello; the others are closed at once.
      assertEquals(closed.filter((c) => c).length, SILENT - PER_IP);
      for (const c of silent) {
        try {
          c.close();
        } catch {
          // Closed above.
        }
      }
      // Their slots come back once serve has seen them close: a real client is served.
      assertMatch(await tlsGreeting(port, ca.caCertPem, 10_000), /^220 /);
    });
  } finally {
    await ca.cleanup();
  }
});
