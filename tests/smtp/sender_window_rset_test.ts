// The window's RSET between pipelined messages goes exactly where a transaction may still be
// open: after a body stopped before its LAST always; after a LAST whose reply is not known yet
// or was a refusal unless the peer says LAST_ENDS_TRANSACTION (our customer); never after a LAST
// already answered 250. And our receiver keeps that promise: a message behind one whose every
// recipient was refused is taken as its own, under its own sender (#13).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import assert from "node:assert/strict";
import { reply } from "../../src/wire/reply.ts";
import type { OutboundMessage } from "../../src/smtp/sender.ts";
import { message } from "./_sender_fixture.ts";
import { drain, slowBigBody } from "./_window_fixture.ts";

const to = (n: number) => message({ mailFrom: `s${n}@p.test`, recipients: [`m${n}@c.test`] });
const DELIVERED = ["delivered 250"];
const rsets = (writes: readonly string[]) => writes.join("").match(/RSET\r\n/g)?.length ?? 0;

/** The groups each begin at MAIL; true for those that RSET opens. */
function rsetBeforeEach(writes: readonly string[]): boolean[] {
  const groups = writes.join("").split(/(?=MAIL FROM:)/).slice(1);
  return groups.map((_g, i) => i > 0 && (groups[i - 1] ?? "").endsWith("RSET\r\n"));
}

/**
 * The messages one at a time: the next is offered only once the previous one's result was
 * reported, so each group is written after the previous LAST's reply was read.
 */
function oneAfterTheOther(messages: readonly OutboundMessage[]) {
  let reported = 0;
  const waiters: (() => void)[] = [];
  return {
    onResult: (n: number) => {
      reported = n;
      for (const w of waiters.splice(0)) w();
    },
    messages: (async function* () {
      for (let i = 0; i < messages.length; i++) {
        while (reported < i) await new Promise<void>((r) => waiters.push(r));
        yield messages[i] as OutboundMessage;
      }
    })(),
  };
}

Deno.test("window: a peer that says LAST_ENDS_TRANSACTION gets no RSET between clean messages (#13)", async () => {
  const r = await drain([to(1), to(2), to(3), to(4), to(5)], { saysLastEnds: true });
  assertEquals(r.seen, [DELIVERED, DELIVERED, DELIVERED, DELIVERED, DELIVERED]);
  assertEquals(rsets(r.writes), 0);
  // Still one write for the five groups, each under its own sender.
  assertEquals(r.writes.filter((w) => w.includes("MAIL FROM")).length, 1);
  for (let n = 1; n <= 5; n++) assertEquals(r.senders.get(`m${n}@c.test`), `s${n}@p.test`);
});

Deno.test("window: without RSET, a message behind refused ones is its own transaction at our receiver (#13)", async () => {
  // 2: every recipient refused (BDAT LAST gets 554 with MAIL taken); 3: MAIL refused;
  // 4: the final reply refused; 5 and 6 must each be delivered under their own sender.
  const r = await drain([to(1), to(2), to(3), to(4), to(5), to(6)], {
    saysLastEnds: true,
    mail: (from) => from === "s3@p.test" ? reply(550, "5.7.1", "Sender refused") : undefined,
    rcpt: (a) => a === "m2@c.test" ? reply(550, "5.1.1", "No such user") : undefined,
    final: (a) => a === "m4@c.test" ? reply(554, "5.6.0", "Refused") : undefined,
  });
  assertEquals(r.seen, [
    DELIVERED,
    ["failed 550"],
    ["failed 550"],
    ["failed 554"],
    DELIVERED,
    DELIVERED,
  ]);
  assertEquals(rsets(r.writes), 0);
  assertEquals([...r.bodies.keys()], ["m1@c.test", "m4@c.test", "m5@c.test", "m6@c.test"]);
  assertEquals(r.senders.get("m5@c.test"), "s5@p.test");
  assertEquals(r.senders.get("m6@c.test"), "s6@p.test");
});

Deno.test("window: a body stopped before its LAST is followed by RSET, even where LAST ends transactions (#13)", async () => {
  const r = await drain(
    [
      message({ mailFrom: "s1@p.test", recipients: ["m1@c.test"], body: slowBigBody(50) }),
      to(2),
      to(3),
    ],
    { maxMessageBytes: 100_000, saysLastEnds: true },
  );
  assertEquals(r.seen, [["failed 552"], DELIVERED, DELIVERED]);
  assertEquals(rsetBeforeEach(r.writes), [false, true, false]);
  assertEquals(r.senders.get("m2@c.test"), "s2@p.test");
});

Deno.test("window: a peer without LAST_ENDS_TRANSACTION gets RSET whenever the previous outcome is not known yet (#13)", async () => {
  // Message 1's final reply is held until message 3's group went out.
  const r = await drain([to(1), to(2), to(3)], { holdFirstUntil: "RCPT TO:<m3@c.test>" });
  assertEquals(r.seen, [DELIVERED, DELIVERED, DELIVERED]);
  assertEquals(r.waited, false);
  assertEquals(rsetBeforeEach(r.writes), [false, true, true]);
});

Deno.test("window: a peer without LAST_ENDS_TRANSACTION gets RSET after a refused transaction only, once the outcome is known (#13)", async () => {
  const order = oneAfterTheOther([to(1), to(2), to(3), to(4), to(5)]);
  const r = await drain(order.messages, {
    onResult: order.onResult,
    rcpt: (a) => a === "m2@c.test" ? reply(550, "5.1.1", "No such user") : undefined,
    final: (a) => a === "m4@c.test" ? reply(451, "4.3.0", "Try later") : undefined,
  });
  assertEquals(r.seen, [DELIVERED, ["failed 550"], DELIVERED, ["deferred 451"], DELIVERED]);
  // After 1 and 3 (250 read before the next group): none; after 2 (no recipient) and 4 (451): RSET.
  assertEquals(rsetBeforeEach(r.writes), [false, false, true, false, true]);
  for (const n of [1, 3, 5]) assertEquals(r.senders.get(`m${n}@c.test`), `s${n}@p.test`);
  assert(!r.bodies.has("m2@c.test"));
});

Deno.test("window: more messages refused whole than the receiver's error budget do not end the drain (#13)", async () => {
  // The fixture's receiver allows 10 mistakes; 12 messages whose one recipient is refused.
  const refused = Array.from({ length: 12 }, (_, i) => to(i + 1));
  const r = await drain([...refused, to(13), to(14)], {
    saysLastEnds: true,
    rcpt: (a) =>
      Number(a.slice(1, a.indexOf("@"))) <= 12 ? reply(550, "5.1.1", "No such user") : undefined,
  });
  assertEquals(r.connectionLost, false);
  assertEquals(r.seen, [...refused.map(() => ["failed 550"]), DELIVERED, DELIVERED]);
  assertEquals(r.senders.get("m14@c.test"), "s14@p.test");
});
