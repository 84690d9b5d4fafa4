// A drain whose settlements cannot be recorded (the disk is full: SQLITE_FULL on the settle
// COMMIT) stops offering messages: each message the customer accepts after that stays queued and
// is delivered again at the next ATRN. Before, the drain went on through the whole queue, so
// once space returned the customer got every message of it a second time (review wt17-rev1).
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { connPair } from "../_helpers/conn_pair.ts";
import { holdingCustomer } from "../_helpers/holding_customer.ts";
import { startScriptedServer } from "../_helpers/scripted_server.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { DRAIN_WINDOW, drainLease } from "../../src/odmr/drain.ts";
import { NO_EVENTS } from "../../src/odmr/events.ts";
import type { Lease } from "../../src/queue/types.ts";
import { queuedMessage } from "./_drain_fixture.ts";

const QUEUED = 3 * DRAIN_WINDOW;

/** A lease of QUEUED messages whose every settlement fails as on a full disk. */
function fullDiskLease(): { lease: Lease; settles: () => number } {
  let settles = 0;
  return {
    settles: () => settles,
    lease: {
      domains: ["customer.test"],
      async *messages() {
        for (let n = 1; n <= QUEUED; n++) {
          // A turn of the event loop per message, as over a real socket (a connPair's replies
          // come in microtasks, and the settlements are recorded once per turn).
          await new Promise((r) => setTimeout(r, 0));
          yield queuedMessage(n, 6);
        }
      },
      async *readBody() {
        yield new TextEncoder().encode("Hi\r\n");
      },
      renew: () => Promise.resolve(true),
      settle() {
        settles++;
        return Promise.reject(
          new Error("Cannot commit queue transaction: database or disk is full"),
        );
      },
      release: () => Promise.resolve(),
    },
  };
}

function drain(lease: Lease, client: ReturnType<typeof connPair>["client"]) {
  return drainLease({
    conn: client,
    reader: new LineReader(client),
    lease,
    user: "customer",
    log: NULL_LOGGER,
    events: NO_EVENTS,
    options: { hostname: "provider.test", lineRecords: false, leaseSeconds: 60 },
  });
}

Deno.test("drainLease stops offering messages once a settlement failed (DATA, lock-step) (wt17-rev1)", async () => {
  const l = fullDiskLease();
  const { client, server: serverEnd } = connPair();
  const server = startScriptedServer(serverEnd, { extensions: ["PIPELINING"] });
  const summary = await drain(l.lease, client);
  client.destroy();
  await server.done;
  const offered = server.commands.filter((c) => c.startsWith("MAIL ")).length;
  assert(l.settles() > 0, "a settlement was tried");
  // The failed message's and the next one, whose envelope was sent behind its body.
  assert(offered <= 2, `offered ${offered} of ${QUEUED} after a failed settlement`);
  assertEquals(summary.messages, offered);
  assertEquals(summary.connectionLost, false);
  assert(server.commands.includes("QUIT"), "the session ends in good order");
});

Deno.test("drainLease stops offering messages once a settlement failed (BDAT window) (wt17-rev1)", async () => {
  const l = fullDiskLease();
  const { client, server: serverEnd } = connPair();
  const customer = holdingCustomer(serverEnd);
  const summary = await drain(l.lease, client);
  client.destroy();
  await customer.done;
  const offered = customer.batches.reduce((a, b) => a + b, 0);
  assert(l.settles() > 0, "a settlement was tried");
  // What was in flight when the first failure came back: one window at most.
  assert(offered <= DRAIN_WINDOW, `offered ${offered} of ${QUEUED} after a failed settlement`);
  assertEquals(summary.messages, offered);
  assertEquals(summary.connectionLost, false);
});
