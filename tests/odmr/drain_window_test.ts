// The drain's window (src/odmr/drain.ts): DRAIN_WINDOW messages go to a CHUNKING customer
// without a reply, and a customer that closes with all of them unanswered gets each deferred
// in the queue, nothing delivered, the messages never sent untouched (#13).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { connPair } from "../_helpers/conn_pair.ts";
import { holdingCustomer } from "../_helpers/holding_customer.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { DRAIN_WINDOW, DRAIN_WINDOW_BYTES, drainLease } from "../../src/odmr/drain.ts";
import { NO_EVENTS } from "../../src/odmr/events.ts";
import type { Lease, Settlement } from "../../src/queue/types.ts";
import { queuedMessage } from "./_drain_fixture.ts";

/** A lease of `count` messages of `size` octets (bodies of 4) that records every settlement. */
function lease(count: number, size: number): { lease: Lease; settled: Settlement[] } {
  const settled: Settlement[] = [];
  return {
    settled,
    lease: {
      domains: ["customer.test"],
      async *messages() {
        for (let n = 1; n <= count; n++) yield queuedMessage(n, size);
      },
      async *readBody() {
        yield new TextEncoder().encode("Hi\r\n");
      },
      renew: () => Promise.resolve(true),
      settle(results: readonly Settlement[]) {
        settled.push(...results);
        return Promise.resolve();
      },
      release: () => Promise.resolve(),
    },
  };
}

async function drain(
  count: number,
  opts: { readonly dies?: boolean; readonly size?: number } = {},
) {
  const { client, server } = connPair();
  const customer = holdingCustomer(server, opts);
  const l = lease(count, opts.size ?? 4);
  const summary = await drainLease({
    conn: client,
    reader: new LineReader(client),
    lease: l.lease,
    user: "customer",
    log: NULL_LOGGER,
    events: NO_EVENTS,
    options: { hostname: "provider.test", lineRecords: false, leaseSeconds: 60 },
  });
  client.destroy();
  await customer.done;
  return { customer, summary, settled: l.settled };
}

Deno.test("drainLease keeps DRAIN_WINDOW messages in flight to a customer that answers once its input ran dry (N, N+1) (#13)", async () => {
  const atLimit = await drain(DRAIN_WINDOW);
  assertEquals(atLimit.customer.batches, [DRAIN_WINDOW]);
  const past = await drain(DRAIN_WINDOW + 1);
  assertEquals(past.customer.batches, [DRAIN_WINDOW, 1]);
  assertEquals(past.summary.delivered, DRAIN_WINDOW + 1);
  assertEquals(past.settled.every((s) => s.outcome === "delivered"), true);
});

Deno.test("drainLease sends no further message while DRAIN_WINDOW_BYTES of bodies are in flight (N, N+1) (#13)", async () => {
  // The window counts each message's stored size.
  const atLimit = await drain(6, { size: DRAIN_WINDOW_BYTES / 4 });
  assertEquals(atLimit.customer.batches, [4, 2]);
  const below = await drain(6, { size: DRAIN_WINDOW_BYTES / 4 - 1 });
  assertEquals(below.customer.batches, [5, 1]);
  assertEquals(below.summary.delivered, 6);
});

Deno.test("drainLease: a customer that closes with the whole window unanswered gets those messages deferred, nothing lost (#13)", async () => {
  const r = await drain(DRAIN_WINDOW + 6, { dies: true });
  assertEquals(r.customer.heldAtDeath, DRAIN_WINDOW);
  assertEquals(r.summary.connectionLost, true);
  assertEquals(r.summary.delivered, 0);
  assertEquals(r.summary.deferred, DRAIN_WINDOW);
  // Each message written is deferred (it stays queued, sent again: at most a duplicate); the
  // 6 never written are not settled at all.
  assertEquals(
    r.settled.map((s) => `${s.recipientId} ${s.outcome} ${s.reply.slice(0, 3)}`),
    Array.from({ length: DRAIN_WINDOW }, (_, i) => `${i + 1} deferred 421`),
  );
});

Deno.test("drainLease renews the lease while a full window waits for a slow customer (#13)", async () => {
  // 8 messages, all in flight at once: no next message is taken for the whole drain, so only
  // the results can renew a lease of 3 s (renewed every second) over ~2.4 s of answers.
  const { client, server } = connPair();
  const reader = new LineReader(server);
  const say = (text: string) => server.write(new TextEncoder().encode(text));
  const customer = (async () => {
    await say("220 customer.test ESMTP\r\n");
    let held = "";
    for (;;) {
      const line = await reader.readLine(1000, 5_000);
      if (line.kind !== "line") return;
      const command = new TextDecoder().decode(line.line);
      if (command.startsWith("EHLO")) {
        await say("250-customer.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
        continue;
      }
      if (command === "QUIT") return void await say("221 2.0.0 bye\r\n");
      held += "250 2.0.0 OK\r\n";
      const bdat = /^BDAT (\d+) LAST$/.exec(command);
      if (bdat === null) continue;
      await reader.readExact(Number(bdat[1]), () => {}, 5_000);
      await new Promise((r) => setTimeout(r, 300)); // a slow local MTA behind it
      await say(held);
      held = "";
    }
  })();
  const l = lease(8, 4);
  let renewals = 0;
  const summary = await drainLease({
    conn: client,
    reader: new LineReader(client),
    lease: {
      ...l.lease,
      renew: () => {
        renewals++;
        return Promise.resolve(true);
      },
    },
    user: "customer",
    log: NULL_LOGGER,
    events: NO_EVENTS,
    options: { hostname: "provider.test", lineRecords: false, leaseSeconds: 3 },
  });
  client.destroy();
  await customer;
  assertEquals(summary.delivered, 8);
  assertEquals(renewals >= 1, true, `renewals: ${renewals}`);
});
