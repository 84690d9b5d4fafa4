/**
 * The operator's part of the QueueStore contract, run by tests/queue/contract_test.ts against
 * both backends: what `queue list`, `queue delete`, the quotas and gauges, and maintenance see.
 */
import assert from "node:assert/strict";
import { EXPIRED_GRACE_MS } from "../../src/queue/_maintenance.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { maintenanceOptions } from "../_helpers/queue_fixtures.ts";
import { T0 } from "./_outbound_contract.ts";
import { A, DAY, leaseOf, type Opener, put } from "./_store_contract.ts";

/** The operator's cases. */
export async function adminContract(t: Deno.TestContext, open: Opener): Promise<void> {
  await t.step("list shows delivering while leased; --domain shows that domain only", async () => {
    await open(async (store, clock) => {
      const m1 = await put(store, clock, ["a@one.test", "b@two.test"]);
      await put(store, clock, ["c@two.test"]);
      const lease = leaseOf(await store.claim(["two.test"], A));
      assert.deepEqual(
        (await store.list({ domain: "one.test" })).map((m) => [
          m.id,
          m.recipients.map((r) => r.address),
        ]),
        [[m1, ["a@one.test"]]],
      );
      assert.deepEqual(
        (await store.list()).flatMap((m) => m.recipients.map((r) => `${r.address}:${r.status}`)),
        ["a@one.test:queued", "b@two.test:delivering", "c@two.test:delivering"],
      );
      await lease.release();
    });
  });

  await t.step("delete and deleteDomain count what existed", async () => {
    await open(async (store, clock) => {
      const m1 = await put(store, clock, ["a@one.test", "b@two.test"]);
      const m2 = await put(store, clock, ["c@two.test"]);
      assert.equal(await store.deleteDomain("two.test"), 2);
      assert.equal(await store.get(m2), undefined);
      assert.equal(await store.delete([m1, m2, "NOSUCHMESSAGE0"]), 1);
      assert.deepEqual(await store.list(), []);
    });
  });

  await t.step("usage and domainStats count each message once per domain", async () => {
    await open(async (store, clock) => {
      const size = new TextEncoder().encode("Subject: t\r\n\r\nbody\r\n").length;
      await put(store, clock, ["a@one.test", "b@one.test", "c@two.test"]);
      await put(store, clock, ["d@two.test"]);
      assert.deepEqual(await store.usage("two.test"), { messages: 2, bytes: 2 * size });
      assert.deepEqual(await store.usage("none.test"), { messages: 0, bytes: 0 });
      assert.deepEqual(await store.domainStats(), [
        {
          domain: "one.test",
          route: "atrn",
          messages: 1,
          bytes: size,
          oldestReceivedAt: T0 + 1000,
        },
        {
          domain: "two.test",
          route: "atrn",
          messages: 2,
          bytes: 2 * size,
          oldestReceivedAt: T0 + 1000,
        },
      ]);
    });
  });

  await t.step(
    "maintenance expires at max_age + 1 ms, queues a DSN to a local sender, removes after the grace",
    async () => {
      await open(async (store, clock) => {
        const options = maintenanceOptions({
          maxAgeMs: () => DAY,
          isLocalDomain: (d) => d === "local.test",
        });
        const id = await put(store, clock, ["u@one.test"], { from: "s@local.test" });
        clock.ms += DAY;
        assert.equal((await store.maintain(options)).expiredRecipients, 0, "exactly max_age");
        clock.ms += 1;
        const report = await store.maintain(options);
        assert.equal(report.expiredRecipients, 1);
        assert.equal(report.dsnQueued, 1);
        assert.deepEqual((await store.get(id))?.recipients.map((r) => r.status), ["expired"]);
        const dsn = (await store.list({ domain: "local.test" }))[0];
        assert.equal(dsn?.mailFrom, "");
        assert.deepEqual(dsn?.recipients.map((r) => r.address), ["s@local.test"]);
        assert.match(
          new TextDecoder().decode(await collectBytes(store.readBody(dsn?.id ?? ""))),
          /5\.4\.7/,
        );
        clock.ms += EXPIRED_GRACE_MS;
        assert.equal((await store.maintain(options)).removedRecipients, 1);
        assert.equal(await store.get(id), undefined);
      });
    },
  );
}
