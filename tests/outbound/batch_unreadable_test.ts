/**
 * An outbound message whose stored body cannot be read whole (#13: a body in its row that is
 * not its size, a segment file that ends early, chunks with a gap) is deferred by the retry
 * schedule and logged as `message_unreadable` naming it, and the destination's other mail goes
 * out past it, whether or not the batch signs (review rev14 F2). serve always signs (its
 * keysForBatch): the DKIM signer read the body first, and its throw failed the whole batch, so
 * the message stayed due and every message queued after it for that domain stayed behind it;
 * the worker claimed the domain again each second (MIN_SLEEP_MS) until the message expired.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { loopback, startMxDns } from "../_helpers/outbound_world.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";
import { assertDeferredOnce, queueMx, runDueBatch } from "./_batch_fixtures.ts";

await toolTest(
  "outbound: a message whose body cannot be read is deferred by the schedule, the rest goes past it (#13)",
  ["dnsmasq"],
  async (t) => {
    if (!canBindPort25("batch_unreadable_test", "127.x.y.61")) return;
    await using dns = await startMxDns({ "ok.test": loopback(61) });
    const mx = await startCaptureServer({ host: loopback(61), port: 25 });
    try {
      for (const signs of [true, false]) {
        await t.step(
          signs ? "a batch that signs (as serve's)" : "a batch that does not sign",
          async () => {
            await withTempDataDir(async (dir) => {
              const store = new SqliteQueueStore(openDatabase(dir));
              try {
                const from = "alice@example.org";
                const bad = await queueMx(store, "u1@ok.test", {
                  from,
                  body: `From: ${from}\r\n\r\n1\r\n`,
                });
                const good = await queueMx(store, "u2@ok.test", {
                  from,
                  body: `From: ${from}\r\n\r\n2\r\n`,
                });
                // Its row says a byte more than its body holds (a disk or an operator's edit).
                const raw = new DatabaseSync(`${dir}/odmr.db`);
                try {
                  raw.prepare("UPDATE messages SET size = size + 1 WHERE id = ?").run(bad);
                } finally {
                  raw.close();
                }
                const before = mx.messages.length;
                const { counts, events, startedAt } = await runDueBatch(
                  store,
                  dns,
                  // Signing reads every body first, keys or not.
                  signs ? { keysForBatch: () => () => Promise.resolve([]) } : {},
                );
                // The good one went out past it...
                assertEquals(mx.messages.slice(before).map((m) => m.recipients), [["u2@ok.test"]]);
                assertEquals([counts.delivered, counts.deferred], [1, 1]);
                assertEquals(await store.get(good), undefined);
                // ...and the bad one waits for its next step, said and named, sent nothing of.
                await assertDeferredOnce(store, bad, startedAt);
                const said = events.filter((e) => e.event === "message_unreadable");
                assertEquals(said.length, 1);
                assert(String(said[0]?.fields.error).includes(bad), String(said[0]?.fields.error));
              } finally {
                await store.close();
              }
            });
          },
        );
      }
    } finally {
      await mx.close();
    }
  },
);
