/**
 * (review wt17-rev1) A peer that closes its connection before the TLS handshake is done (nothing
 * sent, or part of a ClientHello) ends the handshake at once, on node:net and on a NativeConn:
 * the TLS socket only emits "end" then, and the handshake waited for its 60 s deadline, holding
 * the descriptor. Connecting and closing at once (never counted against the connection limits
 * on an implicit-TLS port) then kept a descriptor per connection for a minute: ~17 connections a
 * second took the 1024 of a default `ulimit -n`, and every port of serve with them.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { listen } from "../../src/net/listener.ts";
import { loadSecureContext } from "../../src/net/tls_context.ts";
import { testCaOrSkip } from "../_helpers/certs.ts";
import { until } from "../_helpers/wait_until.ts";

/** Part of a TLS record header (a handshake record), then nothing. */
const PARTIAL_HELLO = new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x40, 0x01]);

for (const native of [false, true]) {
  for (const sent of ["nothing", "part of a ClientHello"] as const) {
    const name = `implicit TLS (${native ? "NativeConn" : "node:net"}): a peer that closes after ` +
      `${sent} ends its handshake at once, not at the 60 s deadline (wt17-rev1)`;
    Deno.test(name, async () => {
      const ca = await testCaOrSkip(name);
      if (ca === undefined) return;
      const failures: string[] = [];
      let served = 0;
      const l = await listen({
        host: "127.0.0.1",
        port: 0,
        native,
        secureContext: loadSecureContext(ca.certPath, ca.keyPath),
        onConn: (c) => {
          served++;
          c.destroy();
        },
        onTlsFailure: (_peer, err) => failures.push(String(err)),
      });
      try {
        const peer = await Deno.connect({ hostname: "127.0.0.1", port: l.port });
        if (sent !== "nothing") await peer.write(PARTIAL_HELLO);
        peer.close();
        await until("the handshake's end", () => failures.length > 0, 10_000, 10);
        assertEquals([failures.length, served], [1, 0]);
      } finally {
        await l.close();
        await ca.cleanup();
      }
    });
  }
}
