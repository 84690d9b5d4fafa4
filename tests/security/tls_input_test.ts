/**
 * A TLS peer that keeps sending while `serve` does not read must not grow the process: on the
 * default TLS path (node:tls) the decrypted input is held back at the TCP socket like plain
 * input (src/net/_socket_input.ts). Before the fix, Deno's node:tls took all of it: 64 MiB
 * sent during one held AUTH reply grew serve by ~126 MB. Real `serve`, ODMR implicit-TLS port,
 * before AUTH (anyone can do this).
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { withTestCa } from "../_helpers/certs.ts";
import { Flood } from "../_helpers/flood.ts";
import { toolTest } from "../_helpers/tools.ts";
import { rssKib } from "./_raw.ts";
import { withServe } from "./_serve.ts";
import { TlsClient } from "./_tls_client.ts";

const enc = new TextEncoder();

const FLOOD_BYTES = 64 * 1024 * 1024;
/** What the peer may get into the kernel's buffers and TLS's before it stalls. */
const MAX_TAKEN = 24 * 1024 * 1024;
/** serve's RSS growth allowed while the flood is held back (stated in SECURITY.md). */
const MAX_GROWTH_KIB = 16 * 1024;

/** A CRAM-MD5 response with a wrong digest (CRAM-MD5: no scrypt run to blur the figures). */
const WRONG_CRAM = btoa(`alice ${"0".repeat(32)}`);

/** A failed AUTH CRAM-MD5 up to its response line (whose reply the throttle holds). */
async function failCram(c: TlsClient): Promise<void> {
  assertMatch(await c.command("AUTH CRAM-MD5"), /^334 /);
  await c.conn.write(enc.encode(`${WRONG_CRAM}\r\n`));
}

await toolTest(
  "a TLS peer sending 64 MiB while serve does not read (a held AUTH reply) is held back: serve grows < 16 MiB",
  ["openssl"],
  async () => {
    await withTestCa(async (ca) => {
      await withServe({
        tls: { cert: ca.certPath, key: ca.keyPath },
        odmr: { listen: ["127.0.0.1:0", { address: "127.0.0.1:0", tls: "implicit" }] },
      }, async (server) => {
        const port = server.odmr[1]!.port;
        // Two failures from this address first (answered after 1 s and 2 s): the next AUTH
        // reply is held 4 s, and the session reads nothing meanwhile.
        await Promise.all([1, 2].map(async () => {
          const c = await TlsClient.open(port, ca);
          try {
            assertMatch(await c.reply(), /^220 /);
            assertMatch(await c.command("EHLO attacker.test"), /^250 /);
            await failCram(c);
            assertMatch(await c.reply(), /^535 /);
          } finally {
            c.close();
          }
        }));
        const c = await TlsClient.open(port, ca);
        try {
          assertMatch(await c.reply(), /^220 /);
          assertMatch(await c.command("EHLO attacker.test"), /^250 /);
          const before = await rssKib(server.pid);
          await failCram(c);
          const flood = new Flood((b) => c.conn.write(b), FLOOD_BYTES);
          flood.done.catch(() => {}); // ends with the connection
          await flood.stalled();
          const during = await rssKib(server.pid);
          assert(flood.sent < MAX_TAKEN, `serve took ${flood.sent} bytes it did not read`);
          if (before !== undefined && during !== undefined) {
            assert(during - before < MAX_GROWTH_KIB, `serve grew by ${during - before} KiB`);
          }
          // The reply comes once the delay is over; then the flood is read (and refused).
          assertEquals((await c.reply()).slice(0, 3), "535");
        } finally {
          c.close();
        }
      }, { users: [{ name: "alice", domains: ["example.org"] }] });
    });
  },
);
