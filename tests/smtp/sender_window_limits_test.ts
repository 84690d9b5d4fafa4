// How much sendMany keeps in flight under CHUNKING and PIPELINING: `window` messages and
// `windowBytes` body octets without a reply (each limit at N and N+1), and a customer that
// closes with all of them unanswered gets every one deferred, none lost (#13).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { connPair } from "../_helpers/conn_pair.ts";
import { holdingCustomer } from "../_helpers/holding_customer.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { type SenderOptions, SmtpSender } from "../../src/smtp/sender.ts";
import { message, outcomeCodes } from "./_sender_fixture.ts";

/** A 22-octet body ("Subject: hi\r\n\r\nhello\r\n"), one recipient each. */
const messages = (n: number) =>
  Array.from({ length: n }, (_, i) => message({ recipients: [`m${i + 1}@c.test`] }));

/** Sends `count` messages to a holding customer; what it saw and what the sender reported. */
async function send(
  count: number,
  window: Pick<SenderOptions, "window" | "windowBytes">,
  opts: { readonly dies?: boolean } = {},
) {
  const { client, server } = connPair();
  const customer = holdingCustomer(server, opts);
  const sender = new SmtpSender({
    conn: client,
    reader: new LineReader(client),
    log: NULL_LOGGER,
    options: { hostname: "provider.test", lineRecords: false, ...window },
  });
  assertEquals((await sender.greet()).code, 220);
  await sender.hello();
  const seen: string[][] = [];
  const sent = await sender.sendMany(messages(count), (_m, result) => {
    seen.push(outcomeCodes(result));
  });
  await sender.quit();
  client.destroy();
  await customer.done;
  return { customer, seen, sent };
}

const delivered = (n: number) => Array.from({ length: n }, () => ["delivered 250"]);

Deno.test("sendMany in flight: `window` messages go out without a reply, the next one only after replies (N, N+1) (#13)", async () => {
  const atLimit = await send(5, { window: 5 });
  assertEquals(atLimit.customer.batches, [5]);
  assertEquals(atLimit.seen, delivered(5));
  const past = await send(6, { window: 5 });
  assertEquals(past.customer.batches, [5, 1]);
  assertEquals(past.seen, delivered(6));
});

Deno.test("sendMany in flight: no further message goes out once `windowBytes` body octets are unanswered (N, N+1) (#13)", async () => {
  // 22 octets each: with 66 the third message reaches the limit, with 67 a fourth still goes.
  const atLimit = await send(8, { window: 64, windowBytes: 66 });
  assertEquals(atLimit.customer.batches, [3, 3, 2]);
  assertEquals(atLimit.seen, delivered(8));
  const past = await send(8, { window: 64, windowBytes: 67 });
  assertEquals(past.customer.batches, [4, 4]);
  assertEquals(past.seen, delivered(8));
});

Deno.test("sendMany in flight: a message larger than `windowBytes` still goes, alone (#13)", async () => {
  const r = await send(3, { window: 64, windowBytes: 10 });
  assertEquals(r.customer.batches, [1, 1, 1]);
  assertEquals(r.seen, delivered(3));
});

Deno.test("sendMany in flight: a customer that closes with a full window unanswered gets each of those messages deferred, the rest not sent (#13)", async () => {
  const r = await send(70, { window: 64 }, { dies: true });
  assertEquals(r.customer.heldAtDeath, 64);
  // Every message that went out is reported, deferred (sent again later: a duplicate at
  // most, never a loss); none is reported delivered without its 250; the 6 never written
  // are not reported at all (they stay queued untouched).
  assertEquals(r.seen, Array.from({ length: 64 }, () => ["deferred 421"]));
  assertEquals(r.sent.connectionLost, true);
  assertEquals(r.sent.sent, 64);
});
