/**
 * Failed and its report queued are one step (review wt16-r3), run by tests/queue/contract_test.ts
 * against both backends: a recipient settled failed has its report pending in the same commit,
 * so a report whose write failed, or a process that died before it, still reaches the sender
 * from the next maintenance pass, once; a report queued by bounce.ts, or decided against (`<>`,
 * NOTIFY=NEVER, the foreign-bounce limit: dropped, as README "Queue lifecycle" says), is never
 * sent again; a recipient under a live lease is left to its drain or worker.
 */
import assert from "node:assert/strict";
import { bounceFailed, BounceLimiter } from "../../src/queue/bounce.ts";
import type { MaintenanceOptions, QueuedMessage, QueueStore } from "../../src/queue/types.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { maintenanceOptions } from "../_helpers/queue_fixtures.ts";
import { parseDsn } from "./_outbound_maintenance_contract.ts";
import { type Clock, type OutboundOpener, putRouted, T0 } from "./_outbound_contract.ts";

const DAY = 86_400_000;
const REPLY = "550 5.1.1 <a@far.test>: no such user";

const OPTIONS: MaintenanceOptions = maintenanceOptions({
  isLocalDomain: (d) => d === "local.test",
  delayNoticeMs: 4 * DAY,
  foreignBounceBudget: 10,
});

/** Leases far.test's message and settles its one recipient failed; the lease stays open. */
async function failOne(store: QueueStore, clock: Clock) {
  const lease = await store.claimOutbound({ owner: "w", leaseSeconds: 60, now: clock.ms });
  assert.ok(lease);
  const [message] = await Array.fromAsync(lease.messages());
  assert.ok(message);
  const rid = message.recipients[0]?.id ?? -1;
  await lease.settle([{
    recipientId: rid,
    messageId: message.id,
    outcome: "failed",
    reply: REPLY,
  }]);
  return { lease, message, failed: [{ id: rid, reply: REPLY }] };
}

/** The reports queued so far (MAIL FROM:<>), besides `originals`. */
async function reports(store: QueueStore, originals: readonly string[] = []) {
  return (await store.list()).filter((m) => m.mailFrom === "" && !originals.includes(m.id));
}

/** Bounces as the drain and the worker do (bounce.ts), with `store` and `limiter`. */
function bounce(
  store: QueueStore,
  message: QueuedMessage,
  failed: readonly { id: number; reply: string }[],
  limiter = new BounceLimiter(10),
) {
  return bounceFailed(message, failed, {
    store,
    hostname: "mx.test",
    isLocalDomain: (d) => d === "local.test",
    limiter,
    log: NULL_LOGGER,
  });
}

/** `store` whose writes of new messages fail (a queue briefly unwritable, a PostgreSQL blip). */
function unwritable(store: QueueStore): QueueStore {
  return new Proxy(store, {
    get(target, key) {
      if (key === "begin") return () => Promise.reject(new Error("database is locked"));
      const v = Reflect.get(target, key);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/** The cases. */
export async function reportPendingContract(
  t: Deno.TestContext,
  open: OutboundOpener,
): Promise<void> {
  await t.step(
    "a failed recipient whose report was never queued (write failed, crash) gets it from maintenance, once",
    async () => {
      await open(async (store, clock, reopen) => {
        await putRouted(store, clock, [["a@far.test", "mx"]], { body: "Subject: t\r\n\r\nb\r\n" });
        const { lease, message, failed } = await failOne(store, clock);
        // The report's write fails: only dsn_failed is logged.
        assert.equal(await bounce(unwritable(store), message, failed), "none");
        await lease.release();
        // The process dies now; the next start's first pass sends the report.
        const restarted = await reopen();
        const pass = await restarted.maintain(OPTIONS);
        assert.equal(pass.dsnQueued, 1);
        assert.equal(pass.expiredRecipients, 0);
        const [report, ...more] = await reports(restarted, [message.id]);
        assert.equal(more.length, 0);
        assert.ok(report);
        assert.deepEqual(
          report.recipients.map((r) => [r.address, r.route, r.notify]),
          [["s@local.test", "atrn", "NEVER"]],
        );
        // The same report the worker would have queued: refused, with the reply that failed it.
        const dsn = parseDsn(await collectBytes(restarted.readBody(report.id)));
        assert.equal(dsn.top.get("subject"), "Undelivered Mail Returned to Sender");
        const [group] = dsn.perRecipient;
        assert.equal(group?.get("final-recipient"), "rfc822; a@far.test");
        assert.equal(group?.get("action"), "failed");
        assert.equal(group?.get("status"), "5.1.1");
        assert.equal(group?.get("diagnostic-code"), `smtp; ${REPLY}`);
        // Never a second one: not by the next pass, nor at expiry.
        assert.equal((await restarted.maintain(OPTIONS)).dsnQueued, 0);
        clock.ms = T0 + 5 * DAY + 2000;
        const end = await restarted.maintain(OPTIONS);
        assert.equal(end.expiredRecipients, 1);
        assert.equal(end.dsnQueued, 0);
        assert.equal((await reports(restarted, [message.id])).length, 1);
      });
    },
  );

  await t.step("a failed recipient under a live lease is left to its drain or worker", async () => {
    await open(async (store, clock) => {
      await putRouted(store, clock, [["a@far.test", "mx"]]);
      const { lease, message } = await failOne(store, clock);
      assert.equal((await store.maintain(OPTIONS)).dsnQueued, 0, "the lease is live");
      await lease.release();
      assert.equal((await store.maintain(OPTIONS)).dsnQueued, 1);
      assert.equal((await reports(store, [message.id])).length, 1);
    });
  });

  await t.step(
    "a report queued by bounceFailed is the only one: maintenance sends none",
    async () => {
      await open(async (store, clock) => {
        await putRouted(store, clock, [["a@far.test", "mx"]]);
        const { lease, message, failed } = await failOne(store, clock);
        assert.equal(await bounce(store, message, failed), "queued");
        await lease.release();
        assert.equal((await store.maintain(OPTIONS)).dsnQueued, 0);
        clock.ms = T0 + 5 * DAY + 2000;
        assert.equal((await store.maintain(OPTIONS)).dsnQueued, 0);
        assert.equal((await reports(store, [message.id])).length, 1);
      });
    },
  );

  await t.step(
    "no report decided by bounceFailed comes later: <>, NOTIFY=NEVER, foreign over the limit",
    async () => {
      await open(async (store, clock) => {
        const originals: string[] = [];
        const cases = [
          { from: "", want: "none" },
          { from: "s@local.test", notify: "NEVER", want: "none" },
          { from: "x@foreign.test", want: "dropped" },
        ] as const;
        for (const c of cases) {
          await putRouted(store, clock, [["a@far.test", "mx"]], {
            from: c.from,
            ...("notify" in c ? { notify: c.notify } : {}),
          });
          const { lease, message, failed } = await failOne(store, clock);
          originals.push(message.id);
          // A spent foreign-bounce limit: dropped and logged, never sent later.
          assert.equal(await bounce(store, message, failed, new BounceLimiter(0)), c.want);
          await lease.release();
        }
        const pass = await store.maintain(OPTIONS);
        assert.equal(pass.dsnQueued + pass.dsnDropped, 0);
        assert.deepEqual(await reports(store, originals), []);
      });
    },
  );
}
