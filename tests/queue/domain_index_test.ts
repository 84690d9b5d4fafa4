import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { DOMAIN_PAGE_SQL, MESSAGE_PAGE_SIZE } from "../../src/queue/_reader.ts";
import type { Lease, QueueStore } from "../../src/queue/types.ts";
import {
  failEveryOther,
  maintenanceOptions,
  queueMessage,
  withStore,
} from "../_helpers/queue_fixtures.ts";

const T0 = 1_700_000_000_000;
const OWNER = { owner: "s", leaseSeconds: 60 };

function put(store: QueueStore, addresses: readonly string[], bytes = 10): Promise<string> {
  return queueMessage(store, { to: addresses, body: new Uint8Array(bytes).fill(0x61) });
}

/** The store's clock: from T0 (or where `clock` is), 1 ms on at each read. */
function ticking(clock = { ms: T0 }): { now: () => number } {
  return { now: () => clock.ms++ };
}

async function claimed(store: QueueStore, domains: string[]): Promise<Lease> {
  const c = await store.claim(domains, OWNER);
  if (c.kind !== "claimed") throw new Error(`claim was ${c.kind}`);
  return c.lease;
}

Deno.test("the drain's message query is a range search in the (domain, status, message_id) index, whatever else is queued (#13)", async () => {
  await withStore(async (store, dataDir) => {
    for (let i = 0; i < 50; i++) await put(store, [`u${i}@other.test`]);
    await put(store, ["a@one.test"]);
    const raw = new DatabaseSync(`${dataDir}/odmr.db`);
    try {
      raw.exec("ANALYZE");
      const plan = raw.prepare(`EXPLAIN QUERY PLAN ${DOMAIN_PAGE_SQL}`)
        .all("one.test", "queued", "", MESSAGE_PAGE_SIZE)
        .map((r) => String(r.detail));
      // One search bounded by the domain, in index order: no scan, no sort of other rows.
      assert.deepEqual(plan, [
        "SEARCH recipients USING COVERING INDEX recipients_domain_status_message " +
        "(domain=? AND status=? AND message_id>?)",
      ]);
    } finally {
      raw.close();
    }
  }, ticking());
});

Deno.test("Lease.messages() over two domains yields each message once, oldest first, across pages (#13)", async () => {
  await withStore(async (store) => {
    const want: string[] = [];
    // 2.5 pages; some messages have recipients in both domains, others elsewhere between them.
    for (let i = 0; i < MESSAGE_PAGE_SIZE * 2 + 50; i++) {
      const to = i % 3 === 0
        ? [`a${i}@one.test`, `b${i}@two.test`]
        : i % 3 === 1
        ? [`a${i}@one.test`]
        : [`b${i}@two.test`];
      want.push(await put(store, to));
      await put(store, [`x${i}@other.test`]);
    }
    const lease = await claimed(store, ["one.test", "two.test"]);
    const got = await Array.fromAsync(lease.messages());
    assert.deepEqual(got.map((m) => m.id), want);
    assert.ok(got.every((m) => m.recipients.every((r) => r.domain !== "other.test")));
    assert.equal(got[0]?.recipients.length, 2, "both domains' recipients of a shared message");
    await lease.release();
  }, ticking());
});

Deno.test("list({domain}) shows queued and failed recipients' messages once each, in order (#13)", async () => {
  await withStore(async (store) => {
    const ids: string[] = [];
    for (let i = 0; i < MESSAGE_PAGE_SIZE + 1; i++) {
      ids.push(await put(store, [`a${i}@one.test`, `b${i}@one.test`]));
      await put(store, [`x${i}@other.test`]);
    }
    // Fail one recipient of every other message: those now sit in two index ranges.
    const lease = await claimed(store, ["one.test"]);
    await failEveryOther(lease, 0);
    await lease.release();
    const listed = await store.list({ domain: "one.test" });
    assert.deepEqual(listed.map((m) => m.id), ids);
    assert.deepEqual(
      listed[0]?.recipients.map((r) => r.status),
      ["failed", "queued"],
    );
  }, ticking());
});

Deno.test("domainStats() kept by triggers equals a recount from the rows after every kind of change (#13)", async () => {
  const clock = { ms: T0 };
  await withStore(async (store, dataDir) => {
    const raw = new DatabaseSync(`${dataDir}/odmr.db`);
    const recount = () =>
      raw.prepare(
        "SELECT domain, count(*) AS messages, sum(size) AS bytes FROM (" +
          "SELECT DISTINCT r.domain, m.id, m.size FROM recipients r " +
          "JOIN messages m ON m.id = r.message_id WHERE r.status = 'queued') " +
          "GROUP BY domain ORDER BY domain",
      ).all().map((r) => ({ ...r }));
    const stats = async () =>
      (await store.domainStats()).map(({ domain, messages, bytes }) => ({
        domain,
        messages,
        bytes,
      }));
    try {
      // A small seeded generator: the same sequence every run.
      let seed = 7;
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed % n;
      };
      const domains = ["one.test", "two.test", "three.test"];
      const ids: string[] = [];
      for (let step = 0; step < 120; step++) {
        const action = rand(6);
        if (action <= 1 || ids.length === 0) {
          const to = Array.from(
            { length: 1 + rand(3) },
            (_, i) => `u${step}_${i}@${domains[rand(3)]}`,
          );
          ids.push(await put(store, to, 1 + rand(50)));
        } else if (action === 2) {
          const domain = domains[rand(3)] ?? "one.test";
          const c = await store.claim([domain], OWNER);
          if (c.kind === "claimed") {
            const outcomes = ["delivered", "deferred", "failed"] as const;
            for await (const m of c.lease.messages()) {
              await c.lease.settle(m.recipients.map((r) => ({
                recipientId: r.id,
                messageId: m.id,
                outcome: outcomes[rand(3)] ?? "deferred",
                reply: "x",
              })));
              if (rand(2) === 0) break;
            }
            await c.lease.release();
          }
        } else if (action === 3) {
          await store.delete([ids[rand(ids.length)] ?? ""]);
        } else if (action === 4) {
          if (rand(4) === 0) await store.deleteDomain(domains[rand(3)] ?? "one.test");
        } else {
          clock.ms += 40 * 86_400_000;
          await store.maintain(maintenanceOptions());
        }
        assert.deepEqual(await stats(), recount(), `after step ${step} (action ${action})`);
      }
    } finally {
      raw.close();
    }
  }, ticking(clock));
});
