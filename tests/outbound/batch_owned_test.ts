/**
 * A destination that has become a user's (src/outbound/_batch.ts `owned`): its mail is held for
 * the owner's ATRN (QueueStore.holdForAtrn on a real SQLite store) instead of sent to its MX,
 * whether the batch finds it owned before it starts (no MX lookup, no connection) or between two
 * messages (what was sent stays sent; the rest is held). Ownership is asked through a counter
 * of calls, not a clock: the message it flips at is fixed. The MX is a capture server on
 * 127.x.y.123:25 found through dnsmasq (loopback(): this process's own addresses).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { QueueStore } from "../../src/queue/types.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { loopback, startMxDns } from "../_helpers/outbound_world.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";
import { queueMx, runDueBatch } from "./_batch_fixtures.ts";

const FROM = "alice@example.org";

async function queueThree(store: QueueStore): Promise<void> {
  for (const n of [1, 2, 3]) {
    await queueMx(store, `u${n}@dest.test`, {
      from: FROM,
      body: `From: ${FROM}\r\nSubject: m${n}\r\n\r\nbody\r\n`,
    });
  }
}

/** Each recipient as [address, route, status], in queue order. */
async function routes(store: QueueStore): Promise<string[][]> {
  return (await store.list()).flatMap((m) =>
    m.recipients.map((r) => [r.address, r.route, r.status])
  );
}

await toolTest("runBatch holds an owned destination's mail for ATRN", ["dnsmasq"], async (t) => {
  if (!canBindPort25("batch_owned", "127.x.y.123")) return;
  await using dns = await startMxDns({ "dest.test": loopback(123) });
  const mx = await startCaptureServer({ host: loopback(123), port: 25 });
  const withStore = (fn: (store: QueueStore) => Promise<void>) =>
    withTempDataDir(async (dir) => {
      const store = new SqliteQueueStore(openDatabase(dir));
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    });
  try {
    await t.step("owned before the batch: no connection, all held", async () => {
      await withStore(async (store) => {
        await queueThree(store);
        const { counts, events } = await runDueBatch(store, dns, {
          owned: { isOwned: () => true, hold: (d) => store.holdForAtrn([d]) },
        });
        assertEquals([counts.messages, counts.sessions, mx.connections], [0, 0, 0]);
        const held = events.find((e) => e.event === "outbound_held");
        assertEquals(held?.fields.recipients, 3);
        assertEquals(await routes(store), [
          ["u1@dest.test", "atrn", "queued"],
          ["u2@dest.test", "atrn", "queued"],
          ["u3@dest.test", "atrn", "queued"],
        ]);
        assertEquals(await store.nextOutboundAt(), undefined);
      });
    });

    await t.step("owned from the second message on: the first sent, the rest held", async () => {
      await withStore(async (store) => {
        await queueThree(store);
        // Asked before the batch, then before each message: owned from the third call on.
        let calls = 0;
        const { counts, events } = await runDueBatch(store, dns, {
          owned: { isOwned: () => ++calls >= 3, hold: (d) => store.holdForAtrn([d]) },
        });
        assertEquals([counts.delivered, mx.messages.length], [1, 1]);
        assertEquals(mx.messages[0]?.recipients, ["u1@dest.test"]);
        assertEquals(events.find((e) => e.event === "outbound_held")?.fields.recipients, 2);
        assertEquals(await routes(store), [
          ["u2@dest.test", "atrn", "queued"],
          ["u3@dest.test", "atrn", "queued"],
        ]);
      });
    });
  } finally {
    await mx.close();
  }
});
