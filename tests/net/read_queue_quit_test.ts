/**
 * A client that sends its last commands and QUIT, then half-closes (shutdown(SHUT_WR)) and reads
 * the replies, is done sending, not gone: `Conn.inputEnded` stays false for it, so fetch's
 * receiver (`stopAtInputEnd`) still runs what it pipelined (review rev11c F1). An end after
 * anything else is a hang-up.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { ReadQueue } from "../../src/net/_read_queue.ts";
import { NativeConn } from "../../src/net/native_conn.ts";

const enc = new TextEncoder();

Deno.test("ReadQueue: an end right after a QUIT line (any case) is endedAfterQuit, not inputEnded; after anything else, or an error, the input ended", () => {
  const cases: [string[], boolean][] = [
    [["MAIL FROM:<a@b.test>\r\nQUIT\r\n"], true],
    [["BDAT 4 LAST\r\nhi\r\n", "quit\r\n"], true],
    [["QUIT\r\n"], true],
    [["MAIL FROM:<a@b.test>\r\n"], false],
    [["XQUIT\r\n"], false],
    [["QUIT\r\nNOOP\r\n"], false],
    [["QUIT"], false],
    [["QUIT\r\n", "NOOP\r\n"], false],
    [["QU", "IT\r\n"], false], // split across chunks: judged a hang-up
  ];
  for (const [chunks, expected] of cases) {
    const q = new ReadQueue();
    for (const c of chunks) q.push(enc.encode(c));
    assertEquals(q.endedAfterQuit, false, "not before the end");
    assertEquals(q.inputEnded, false, "not before the end");
    q.end();
    assertEquals(q.endedAfterQuit, expected, JSON.stringify(chunks));
    assertEquals(q.inputEnded, !expected, JSON.stringify(chunks));
    q.fail(new Error("reset"));
    assertEquals(q.inputEnded, true, "an error ends the input, QUIT or not");
  }
});

Deno.test("NativeConn.inputEnded: a peer that half-closes after QUIT is not gone; one that closes after MAIL is", async () => {
  for (
    const [sent, ended] of [["MAIL FROM:<a@b.test>\r\nQUIT\r\n", false], [
      "MAIL FROM:<a@b.test>\r\n",
      true,
    ]] as const
  ) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const conn = new NativeConn(await listener.accept());
    listener.close();
    await client.write(enc.encode(sent));
    await client.closeWrite();
    // Read to the end: every byte, then EOF.
    let got = 0;
    for (;;) {
      const chunk = await conn.read(2_000);
      if (chunk === null) break;
      got += chunk.byteLength;
    }
    assertEquals(got, sent.length);
    assertEquals(conn.inputEnded, ended, sent);
    conn.destroy();
    client.close();
  }
});
