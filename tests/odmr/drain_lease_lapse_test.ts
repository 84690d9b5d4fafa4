/**
 * Review wt16-r1 B: the drain renews its lease only when it takes the next message from the
 * lease or when a message's result comes (src/odmr/drain.ts `leased`, `onResult`). While one
 * message waits for its final reply (up to `dataFinalMs`: 10 minutes, or twice `smtp.timeout`) or
 * while one large body is written to a slow customer, neither happens, so a healthy drain's lease
 * (`queue.lease_time`, 5 minutes by default) runs out under it: another ATRN for the same domain
 * (the customer's next cron `fetch --once`, or a second poller) is then granted the domain and
 * hands out the very message still in flight, a duplicate. The drain's own comment says "the
 * lease must not run out under a healthy drain".
 *
 * Here: a lease of 3 s (renewed every second by a healthy drain), a customer whose local side
 * takes longer than that to answer one message's end of data. While it holds the reply, a second
 * owner asks for the domain every 100 ms for twice the lease time: it must always be refused
 * ("busy"). Without renewal during the wait it is granted once the 3 s passed.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { connPair, type MemoryConn } from "../_helpers/conn_pair.ts";
import { queueMessage, withStore } from "../_helpers/queue_fixtures.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { drainLease } from "../../src/odmr/drain.ts";
import { NO_EVENTS } from "../../src/odmr/events.ts";

const LEASE_SECONDS = 3;
const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A customer without CHUNKING: answers every command 250 (DATA 354), reads the body, tells
 * `gotBody`, and answers its end of data only once `answer` resolves.
 */
function slowCustomer(conn: MemoryConn, gotBody: () => void, answer: Promise<void>) {
  const reader = new LineReader(conn);
  const say = (text: string) => conn.write(enc.encode(text));
  return (async () => {
    await say("220 customer.test ESMTP\r\n");
    for (;;) {
      const line = await reader.readLine(1000, 30_000);
      if (line.kind !== "line") return;
      const verb = dec.decode(line.line).split(" ")[0]?.toUpperCase();
      if (verb === "EHLO") await say("250-customer.test\r\n250 PIPELINING\r\n");
      else if (verb === "QUIT") return void await say("221 2.0.0 bye\r\n");
      else if (verb === "DATA") {
        await say("354 go ahead\r\n");
        await reader.readData({ maxMessageBytes: 1e6, maxLineBytes: 1000 }, () => {}, 30_000);
        gotBody();
        await answer; // the local MTA behind the customer is slow (cut-through)
        await say("250 2.0.0 OK\r\n");
      } else await say("250 2.0.0 OK\r\n");
    }
  })();
}

Deno.test("drainLease keeps its lease while one message waits longer than the lease for its final reply (review wt16-r1 B)", async () => {
  await withStore(async (store) => {
    await queueMessage(store, { from: "a@b.test", to: ["u@customer.test"] });
    const claim = await store.claim(["customer.test"], {
      owner: "drain-1",
      leaseSeconds: LEASE_SECONDS,
    });
    if (claim.kind !== "claimed") throw new Error(`claim: ${claim.kind}`);
    const { client, server } = connPair();
    let release = () => {};
    const answer = new Promise<void>((r) => release = r);
    let bodyCame = () => {};
    const bodyHere = new Promise<void>((r) => bodyCame = r);
    const customer = slowCustomer(server, bodyCame, answer);
    const drained = drainLease({
      conn: client,
      reader: new LineReader(client),
      lease: claim.lease,
      user: "customer",
      log: NULL_LOGGER,
      events: NO_EVENTS,
      options: { hostname: "provider.test", lineRecords: false, leaseSeconds: LEASE_SECONDS },
    });
    await bodyHere;
    // A second poller asks for the domain while the first drain waits for the reply.
    let grantedAfterMs: number | undefined;
    let offeredAgain = 0;
    const started = Date.now();
    while (Date.now() - started < 2 * LEASE_SECONDS * 1000) {
      const other = await store.claim(["customer.test"], {
        owner: "drain-2",
        leaseSeconds: LEASE_SECONDS,
      });
      if (other.kind === "claimed") {
        grantedAfterMs = Date.now() - started;
        for await (const _ of other.lease.messages()) offeredAgain++;
        await other.lease.release();
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    release();
    const summary = await drained;
    client.destroy();
    await customer;
    await claim.lease.release();
    assertEquals(summary.delivered, 1);
    assertEquals(
      { grantedAfterMs, offeredAgain },
      { grantedAfterMs: undefined, offeredAgain: 0 },
      "the domain was granted to a second owner while its message was in flight",
    );
  });
});
