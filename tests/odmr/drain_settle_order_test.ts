// A drain that fails part-way (a queue read throws) still records the
// results the customer already gave before drainLease rejects: the provider releases the lease
// right after, and a settlement recorded after the release would leave its messages' bodies on
// disk until the next start (#13 review of the batched settlements).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import assert from "node:assert/strict";
import { connPair } from "../_helpers/conn_pair.ts";
import { startScriptedServer } from "../_helpers/scripted_server.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { drainLease } from "../../src/odmr/drain.ts";
import { NO_EVENTS } from "../../src/odmr/events.ts";
import type { Lease, Settlement } from "../../src/queue/types.ts";
import { queuedMessage } from "./_drain_fixture.ts";

const message = (n: number) => queuedMessage(n, 6);

for (const chunking of [false, true]) {
  Deno.test(`drainLease records the customer's results before it rejects for a failed queue read (${chunking ? "BDAT window" : "DATA"}) (#13)`, async () => {
    const events: string[] = [];
    const settled: number[] = [];
    let resultSeen!: () => void;
    const seen = new Promise<void>((r) => resultSeen = r);
    const lease: Lease = {
      domains: ["customer.test"],
      async *messages() {
        yield message(1);
        // The next read fails (e.g. the database went away): at once when the customer's result
        // for message 1 comes in (the window reads replies while it waits for this), else after
        // 200 ms (the DATA path reads that result only once it has the next message or none).
        await Promise.race([seen, new Promise((r) => setTimeout(r, 200))]);
        throw new Error("queue read failed");
      },
      async *readBody() {
        yield new TextEncoder().encode("Hi\r\n");
      },
      renew: () => Promise.resolve(true),
      settle(results: readonly Settlement[]) {
        events.push("settle");
        for (const r of results) settled.push(r.recipientId);
        return Promise.resolve();
      },
      release: () => Promise.resolve(),
    };
    const { client, server: serverEnd } = connPair();
    const server = startScriptedServer(serverEnd, {
      extensions: chunking ? ["PIPELINING", "CHUNKING"] : ["PIPELINING"],
    });
    await assert.rejects(
      drainLease({
        conn: client,
        reader: new LineReader(client),
        lease,
        user: "customer",
        log: NULL_LOGGER,
        events: { ...NO_EVENTS, delivered: () => resultSeen() },
        options: { hostname: "provider.test", lineRecords: false, leaseSeconds: 60 },
      }),
      /queue read failed/,
    );
    // What the provider does next: release the lease. Every result is recorded by now.
    events.push("release");
    assertEquals(events, ["settle", "release"]);
    assertEquals(settled, [1]);
    client.destroy();
    await server.done;
  });
}
