// sendMany with several messages in flight (RFC 3030 BDAT + RFC 2920 PIPELINING), against our
// own SmtpReceiver: only when the peer offers both, each message settled by its own replies in
// order, nothing reported delivered without its 250, bodies byte-exact (#13).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import assert from "node:assert/strict";
import { connPair, type MemoryConn } from "../_helpers/conn_pair.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { SmtpSender } from "../../src/smtp/sender.ts";
import { type Reply, reply } from "../../src/wire/reply.ts";
import { concatBytes } from "../../src/wire/bytes.ts";
import {
  dec,
  enc,
  failingOnResend,
  finish,
  message,
  outcomeCodes,
  ready,
  setup,
} from "./_sender_fixture.ts";
import { drain, slowBigBody } from "./_window_fixture.ts";

const to = (n: number) => message({ recipients: [`m${n}@c.test`] });
/** A sink decision by address; undefined for the others. */
const byAddress = (replies: Record<string, Reply>) => (address: string) => replies[address];
const DELIVERED = ["delivered 250"];

Deno.test("sendMany keeps several messages in flight with BDAT under CHUNKING and PIPELINING (#13)", async () => {
  const r = await drain([to(1), to(2), to(3)], { holdFirstUntil: "RCPT TO:<m3@c.test>" });
  assertEquals(r.seen, [DELIVERED, DELIVERED, DELIVERED]);
  // Message 3 went out while message 1's final reply was still held: no 354 was waited for.
  assertEquals(r.waited, false);
  const text = r.writes.join("");
  assert(!text.includes("DATA\r\n"));
  assertEquals(text.match(/BDAT 22 LAST\r\n/g)?.length, 3);
  // From the second message on, RSET opens the group (a transaction left open by a refused
  // BDAT must not take the next MAIL).
  assertEquals(text.match(/RSET\r\n/g)?.length, 2);
  assertEquals(dec.decode(r.bodies.get("m2@c.test")), "Subject: hi\r\n\r\nhello\r\n");
});

Deno.test("sendMany without CHUNKING keeps one message in flight, with DATA (#13)", async () => {
  const f = setup({}, { window: 8 });
  await ready(f);
  const seen: string[][] = [];
  await f.sender.sendMany([to(1), to(2)], (_m, result) => {
    seen.push(outcomeCodes(result));
  });
  assertEquals(seen, [DELIVERED, DELIVERED]);
  assert(f.server.commands.includes("DATA"));
  assert(!f.server.commands.some((c) => c.startsWith("BDAT")));
  await finish(f);
});

Deno.test("sendMany in flight: a 4xx or 5xx final reply settles only its message, in order (#13)", async () => {
  const r = await drain([to(1), to(2), to(3), to(4)], {
    final: byAddress({
      "m2@c.test": reply(451, "4.3.0", "Try later"),
      "m3@c.test": reply(554, "5.6.0", "Refused"),
    }),
  });
  assertEquals(r.seen, [DELIVERED, ["deferred 451"], ["failed 554"], DELIVERED]);
  assertEquals(r.connectionLost, false);
});

Deno.test("sendMany in flight: refused MAIL or every RCPT refused fails that message, the next one goes (#13)", async () => {
  const r = await drain(
    [
      to(1),
      message({ mailFrom: "bad@remote.test", recipients: ["m2@c.test"] }),
      to(3),
      to(4),
      to(5),
    ],
    {
      mail: (from) =>
        from === "bad@remote.test" ? reply(550, "5.7.1", "Sender refused") : undefined,
      rcpt: byAddress({
        "m3@c.test": reply(550, "5.1.1", "No such user"),
        "m4@c.test": reply(452, "4.2.2", "Mailbox full"),
      }),
    },
  );
  assertEquals(r.seen, [DELIVERED, ["failed 550"], ["failed 550"], ["deferred 452"], DELIVERED]);
  assertEquals([...r.bodies.keys()], ["m1@c.test", "m5@c.test"]);
});

Deno.test("sendMany in flight: a connection lost before a final reply defers every message written, none delivered without its 250 (#13)", async () => {
  const r = await drain([to(1), to(2), to(3)], {
    final: (a) => a === "m2@c.test" ? "close" : undefined,
  });
  assertEquals(r.connectionLost, true);
  assertEquals(r.seen.length, 3);
  // Message 1 was taken by the peer; whether its 250 got out before the close is the peer's
  // timing: delivered if it was read, else deferred (sent again later, never lost).
  assert(["delivered 250", "deferred 421"].includes(r.seen[0]?.[0] ?? ""));
  assertEquals(r.seen.slice(1), [["deferred 421"], ["deferred 421"]]);
});

Deno.test("sendMany in flight: bodies byte-exact, unstuffed, a missing last CRLF added, a large one in chunks (#13)", async () => {
  const dotted = "Subject: d\r\n\r\n.leading dot\r\n..two\r\nend";
  const big = new Uint8Array(300 * 1024).fill(0x61);
  for (let i = 998; i < big.length; i += 1000) {
    big[i] = 13;
    big[i + 1] = 10;
  }
  const bigBody = concatBytes([enc.encode("Subject: big\r\n\r\n"), big, enc.encode("\r\n")]);
  const r = await drain([
    message({ recipients: ["m1@c.test"], body: dotted }),
    message({
      recipients: ["m2@c.test"],
      body: [bigBody.subarray(0, 100_000), bigBody.subarray(100_000)],
    }),
    to(3),
  ]);
  assertEquals(r.seen, [DELIVERED, DELIVERED, DELIVERED]);
  assertEquals(dec.decode(r.bodies.get("m1@c.test")), dotted + "\r\n");
  assertEquals(r.bodies.get("m2@c.test"), bigBody);
  assert(r.writes.join("").includes("BDAT 0 LAST\r\n"));
});

Deno.test("sendMany in flight: a body that cannot be read to its end is never completed with LAST (#13)", async () => {
  // Over 256 KiB: checked on a first read, sent from a second one, which fails half-way.
  const r = await drain([message({ recipients: ["m1@c.test"], body: failingOnResend() }), to(2)]);
  assertEquals(r.seen, [["deferred 451"]]);
  assertEquals(r.connectionLost, true);
  const text = r.writes.join("");
  assert(text.includes("BDAT 65536\r\n"));
  assert(!text.includes("LAST"));
  assertEquals(r.bodies.size, 0);
});

Deno.test("sendMany stops, not hangs, when the caller's onResult throws while the window is full (#13)", async () => {
  // Window 2: after message 1's replies message 3 fills the window again; settling message 1 fails.
  const r = await drain([to(1), to(2), to(3), to(4)], { throwAtResult: 1 }, 2);
  assert(r.error instanceof Error, `sendMany ended with ${String(r.error)}`);
  assertEquals(r.error.message, "settle failed");
  assertEquals(r.seen, [DELIVERED]);
});

/** What went out for the first message: everything before the next group's RSET. */
function firstMessageText(writes: readonly string[]): string {
  const text = writes.join("");
  return text.slice(0, text.indexOf("RSET\r\n"));
}

Deno.test("sendMany in flight: a refused middle BDAT fails (5xx) only its message, stops its body, and the next ones go (#13)", async () => {
  // The receiver's limit is passed in the second 64 KiB chunk: 552 to that chunk, not to LAST.
  const r = await drain(
    [message({ recipients: ["m1@c.test"], body: slowBigBody(50) }), to(2), to(3)],
    { maxMessageBytes: 100_000 },
  );
  assertEquals(r.seen, [["failed 552"], DELIVERED, DELIVERED]);
  assertEquals(r.connectionLost, false);
  assertEquals([...r.bodies.keys()], ["m2@c.test", "m3@c.test"]);
  assertEquals(dec.decode(r.bodies.get("m3@c.test")), "Subject: hi\r\n\r\nhello\r\n");
  // RFC 3030 §3: no chunk after the refusal was read, and never LAST for a refused body.
  const first = firstMessageText(r.writes);
  assert(!first.includes("LAST"), "a refused body was completed with LAST");
  const chunks = first.match(/BDAT 65536\r\n/g)?.length ?? 0;
  assert(chunks >= 2 && chunks < 50, `${chunks} chunks of 50 went out`);
});

Deno.test("sendMany in flight: a middle BDAT refused with 4xx defers only its message; the next ones go (#13)", async () => {
  const r = await drain(
    [message({ recipients: ["m1@c.test"], body: slowBigBody(8) }), to(2), to(3)],
    { failWrite: (to, n) => to === "m1@c.test" && n === 2 },
  );
  assertEquals(r.seen, [["deferred 451"], DELIVERED, DELIVERED]);
  assertEquals(r.connectionLost, false);
  assertEquals([...r.bodies.keys()], ["m2@c.test", "m3@c.test"]);
  assert(!firstMessageText(r.writes).includes("LAST"), "a refused body was completed with LAST");
});

Deno.test("sendMany in flight: the groups ready in one turn go out in one write (#13)", async () => {
  const r = await drain([to(1), to(2), to(3), to(4), to(5)]);
  assertEquals(r.seen, [DELIVERED, DELIVERED, DELIVERED, DELIVERED, DELIVERED]);
  const withMail = r.writes.filter((w) => w.includes("MAIL FROM"));
  // Each socket write costs more than the copy that joins the groups (profiled on the drain).
  assertEquals(withMail.length, 1);
  assertEquals(withMail[0]?.match(/BDAT 22 LAST\r\n/g)?.length, 5);
});

/**
 * A CHUNKING peer that answers one message at a time, each in its own write a timer after the
 * previous one (as a customer that waits for its local MTA): `n` messages, then QUIT.
 */
async function answerOneByOne(server: MemoryConn, n: number): Promise<void> {
  const reader = new LineReader(server);
  const say = (text: string) => server.write(enc.encode(text));
  const line = async () => {
    const r = await reader.readLine(1000, 5_000);
    return r.kind === "line" ? dec.decode(r.line) : "";
  };
  await say("220 customer.test ESMTP\r\n");
  await line();
  await say("250-customer.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
  for (let m = 0; m < n; m++) {
    let replies = "";
    for (;;) {
      const command = await line();
      const bdat = /^BDAT (\d+) LAST$/.exec(command);
      if (bdat !== null) await reader.readExact(Number(bdat[1]), () => {}, 5_000);
      replies += "250 2.0.0 OK\r\n";
      if (bdat !== null) break;
    }
    // A timer, not setImmediate: the sender's batched write (a setImmediate) goes out first.
    await new Promise((r) => setTimeout(r, 1));
    await say(replies);
  }
  assertEquals(await line(), "QUIT");
  await say("221 2.0.0 bye\r\n");
}

Deno.test("sendMany in flight: a full window is refilled once a quarter of it is free, in one write (#13)", async () => {
  const { client, server } = connPair();
  const peer = answerOneByOne(server, 16);
  const sender = new SmtpSender({
    conn: client,
    reader: new LineReader(client),
    log: NULL_LOGGER,
    options: { hostname: "provider.test", lineRecords: false, window: 8 },
  });
  assertEquals((await sender.greet()).code, 220);
  await sender.hello();
  const seen: string[][] = [];
  await sender.sendMany(Array.from({ length: 16 }, (_, i) => to(i + 1)), (_m, result) => {
    seen.push(outcomeCodes(result));
  });
  await sender.quit();
  await peer;
  client.destroy();
  server.destroy();
  assertEquals(seen.length, 16);
  assert(seen.every((s) => s[0] === "delivered 250"));
  const writes = client.written.map((w) => dec.decode(w));
  const mailsPerWrite = writes.map((w) => w.match(/MAIL FROM/g)?.length ?? 0).filter((n) => n > 0);
  // Answered one message at a time: after every second answer, two more go in one write (the
  // peer still holds six to work on).
  assertEquals(mailsPerWrite, [8, 2, 2, 2, 2]);
});

Deno.test("sendMany stops a streamed body, never completed, when the caller's onResult throws (#13)", async () => {
  let results = 0;
  const r = await drain(
    [
      to(1),
      message({ recipients: ["m2@c.test"], body: slowBigBody(50, () => results > 0) }),
      to(3),
    ],
    // Message 1's result (whose settle fails) comes while message 2's body is going out.
    { throwAtResult: 1, holdFirstUntil: "BDAT 65536\r\n", onResult: (n) => results = n },
  );
  assert(r.error instanceof Error, `sendMany ended with ${String(r.error)}`);
  assertEquals(r.seen, [DELIVERED]);
  assertEquals(r.waited, false);
  const text = r.writes.join("");
  const chunks = text.match(/BDAT 65536\r\n/g)?.length ?? 0;
  assert(chunks < 50, `${chunks} chunks of 50 went out after the sender stopped`);
  assert(!text.includes("BDAT 0 LAST"), "a body nobody reads was completed with LAST");
});
