/**
 * Read deadlines of SocketConn with one timer per connection (issue 13 item 4: no timer set and
 * cleared for every read): a read still times out at its own deadline, also after reads with
 * longer or shorter deadlines, and data in time wins. No timer outlives the connection (the
 * test sanitizer fails a test that leaks one).
 */
import { deepStrictEqual as assertEquals, rejects } from "node:assert/strict";
import { TimeoutError } from "../../src/net/conn.ts";
import { withSocketPair } from "../_helpers/socket_pair.ts";
import { until } from "../_helpers/wait_until.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("a read times out at its deadline after an earlier read with a long one (#13)", async () => {
  await withSocketPair(async (conn, peer) => {
    const first = conn.read(60_000);
    await peer.write(enc.encode("hello"));
    assertEquals(dec.decode((await first) ?? new Uint8Array()), "hello");
    // The timer armed for 60 s must not hold this read: it fails after about 50 ms.
    const started = performance.now();
    await rejects(conn.read(50), TimeoutError);
    const waited = performance.now() - started;
    if (waited > 30_000) {
      throw new Error(`the short deadline waited for the long one: ${waited} ms`);
    }
  });
});

Deno.test("data arriving before the deadline wins, later reads still time out (#13)", async () => {
  await withSocketPair(async (conn, peer) => {
    for (let i = 0; i < 3; i++) {
      const read = conn.read(30);
      await peer.write(enc.encode(`m${i}`));
      assertEquals(dec.decode((await read) ?? new Uint8Array()), `m${i}`);
    }
    await rejects(conn.read(20), TimeoutError);
    // After a timeout the connection still reads what comes next.
    const again = conn.read(60_000);
    await peer.write(enc.encode("late"));
    assertEquals(dec.decode((await again) ?? new Uint8Array()), "late");
  });
});

Deno.test("a read without a deadline waits; the peer closing ends it (#13)", async () => {
  await withSocketPair(async (conn, peer) => {
    const read = conn.read();
    peer.close();
    assertEquals(await read, null);
  });
});

Deno.test("readableBytes counts what was received and not read yet, without reading (#13)", async () => {
  await withSocketPair(async (conn, peer) => {
    assertEquals(conn.readableBytes, 0);
    await peer.write(enc.encode("MAIL FROM:<a@b.test>\r\n"));
    await until("the bytes to arrive", () => conn.readableBytes > 0, 5_000, 5);
    assertEquals(conn.readableBytes, 22);
    assertEquals(
      dec.decode((await conn.read(1_000)) ?? new Uint8Array()),
      "MAIL FROM:<a@b.test>\r\n",
    );
    assertEquals(conn.readableBytes, 0);
  });
});
