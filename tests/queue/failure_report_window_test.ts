/**
 * Review wt16-r3: a recipient refused for good is settled `failed` in one commit, and its
 * failure report is queued afterwards in another (src/outbound/_batch.ts and src/odmr/drain.ts:
 * `lease.settle(...).then(() => bounceFailed(...))`). When the report's write fails (the queue
 * briefly unwritable, a PostgreSQL blip past the group deadline) or the process dies between
 * the two commits, the report is never queued: bounceFailed logs dsn_failed, and maintenance
 * sends nothing later, since a recipient stored as failed is taken to have had its report
 * (src/queue/_expiry.ts). The sender is never told that the mail was not delivered.
 */
import assert from "node:assert/strict";
import { bounceFailed } from "../../src/queue/bounce.ts";
import type { QueueStore } from "../../src/queue/types.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { maintenanceOptions, queueMessage, rcpt, withStore } from "../_helpers/queue_fixtures.ts";

const DAY_MS = 86_400_000;

Deno.test("a recipient settled failed whose report could not be queued then gets it later (review wt16-r3)", async () => {
  await withStore(async (store) => {
    const id = await queueMessage(store, {
      from: "s@sender.test",
      to: [rcpt("r@far.test", { route: "mx" })],
    });
    const lease = await store.claimOutbound({ owner: "w", leaseSeconds: 60, now: Date.now() });
    assert.ok(lease !== undefined);
    const [message] = await Array.fromAsync(lease.messages());
    assert.ok(message !== undefined);
    const failed = [{ id: message.recipients[0]!.id, reply: "550 5.1.1 No such user" }];
    await lease.settle([{
      recipientId: failed[0]!.id,
      messageId: message.id,
      outcome: "failed",
      reply: failed[0]!.reply,
    }]);
    await lease.release();
    // The report's write fails once (the process could as well have died here).
    const failing = new Proxy(store, {
      get(target, key) {
        if (key === "begin") return () => Promise.reject(new Error("database is locked"));
        const v = Reflect.get(target, key);
        return typeof v === "function" ? v.bind(target) : v;
      },
    }) as QueueStore;
    const local = (d: string) => d === "sender.test";
    const first = await bounceFailed(message, failed, {
      store: failing,
      hostname: "mx.test",
      isLocalDomain: local,
      log: NULL_LOGGER,
    });
    assert.equal(first, "none", "the report was not queued");
    // Later passes, up to the recipient's expiry at outbound.max_age and past it.
    await store.maintain(maintenanceOptions({ isLocalDomain: local }));
    await store.maintain(
      maintenanceOptions({ isLocalDomain: local, outboundMaxAgeMs: -DAY_MS }),
    );
    const reports = (await store.list()).filter((m) => m.mailFrom === "" && m.id !== id);
    assert.equal(reports.length, 1, "no failure report ever reaches s@sender.test");
  });
});
