/**
 * Conn.writeRecords() over real TCP sockets: every piece arrives in order, a peer that stops
 * reading is cut by the one deadline of the whole list, and a closed connection rejects. (That
 * each piece gets a TLS record of its own is shown end to end in tests/e2e/line_records_test.ts.)
 */
import { deepStrictEqual as assertEquals, rejects } from "node:assert/strict";
import { ConnClosedError, TimeoutError } from "../../src/net/conn.ts";
import { CONN_KINDS } from "../_helpers/socket_pair.ts";

for (const { name, withPair } of CONN_KINDS) {
  Deno.test(`${name}: Conn.writeRecords() delivers every piece in order, skipping empty ones (#13)`, async () => {
    await withPair(async (conn, peer) => {
      const enc = new TextEncoder();
      const lines = Array.from({ length: 200 }, (_, i) => enc.encode(`line ${i}\r\n`));
      await conn.writeRecords([...lines.slice(0, 100), new Uint8Array(0), ...lines.slice(100)]);
      await conn.close();
      const got = new Uint8Array(await new Response(peer.readable).arrayBuffer());
      assertEquals(
        new TextDecoder().decode(got),
        lines.map((l) => new TextDecoder().decode(l)).join(""),
      );
    });
  });

  Deno.test(`${name}: Conn.writeRecords() to a peer that stops reading fails with TimeoutError, and a closed Conn rejects (#13)`, async () => {
    await withPair(async (conn) => {
      // 64 MiB never read: far more than the kernel buffers on both ends.
      const pieces = Array.from({ length: 64 }, () => new Uint8Array(1024 * 1024));
      await rejects(conn.writeRecords(pieces, { timeoutMs: 300 }), TimeoutError);
      await rejects(conn.writeRecords([new Uint8Array(1)]), ConnClosedError);
    });
  });
}
