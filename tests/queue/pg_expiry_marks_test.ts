/**
 * A PostgreSQL maintenance pass plans a message's failure report from the marks it read
 * (`report_pending`), then applies the plan in a transaction that takes those marks off. When
 * another node queued the report of some of them in between (its drain or worker, whose
 * lease lapsed meanwhile), the pass takes off fewer marks than it planned: it rolls its whole
 * transaction back, the marks it had taken off included, and the next pass plans again. Each
 * recipient is reported once: not twice (the pass went on), not never (a mark lost with a
 * partial plan).
 */
import assert from "node:assert/strict";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { bounceFailed, BounceLimiter } from "../../src/queue/bounce.ts";
import type { LeasedDomains } from "../../src/queue/_rows.ts";
import type { QueuedMessage } from "../../src/queue/types.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { maintenanceOptions, queueMessage } from "../_helpers/queue_fixtures.ts";
import { parseDsn } from "./_outbound_maintenance_contract.ts";
import { expiryNodesTest, ReaderWithHook } from "./_pg_expiry_nodes.ts";

const REPLY = "550 5.1.1 no such user";
const OPTIONS = maintenanceOptions({ isLocalDomain: (d) => d === "sender.test" });
const NO_LEASES = () => Promise.resolve<LeasedDomains>({ atrn: new Set(), mx: new Set(), now: 0 });

await expiryNodesTest(
  "PostgreSQL: an expiry pass whose marks were taken off under it by another node's report rolls back whole, and the next pass reports the rest, once",
  "expiry_marks_changed",
  0,
  async ({ node, sql, raw, pass }) => {
    await queueMessage(node, { from: "s@sender.test", to: ["u1@late.test", "u2@late.test"] });
    // Both recipients fail for good; their reports are owed (marked in the settlement).
    const c = await node.claim(["late.test"], { owner: "atrn", leaseSeconds: 60 });
    assert.equal(c.kind, "claimed");
    const lease = (c as Extract<typeof c, { kind: "claimed" }>).lease;
    const [m] = await Array.fromAsync(lease.messages());
    assert.ok(m !== undefined);
    await lease.settle(
      m.recipients.map((r) => ({
        messageId: m.id,
        recipientId: r.id,
        outcome: "failed",
        reply: REPLY,
      })),
    );
    await lease.release();
    const first = m.recipients.find((r) => r.address === "u1@late.test");
    assert.ok(first !== undefined);
    const marks = async () =>
      (await raw`SELECT r.address FROM report_pending p JOIN recipients r
        ON r.id = p.recipient_id ORDER BY r.address`).map((r) => String(r.address));
    assert.deepEqual(await marks(), ["u1@late.test", "u2@late.test"]);
    // After the pass read both marks, the other node's drain queues u1's report (late).
    const otherNode = () =>
      bounceFailed(m as QueuedMessage, [{ id: first.id, reply: REPLY }], {
        store: node,
        hostname: "mx.test",
        isLocalDomain: (d) => d === "sender.test",
        limiter: new BounceLimiter(10),
        log: NULL_LOGGER,
      }).then((outcome) => assert.equal(outcome, "queued"));
    const raced = await pass(NO_LEASES, new ReaderWithHook(sql, otherNode)).run(OPTIONS);
    assert.equal(raced.dsnQueued, 0, "a second report for u1 (the pass went on)");
    assert.deepEqual(await reportedTo(node), [["u1@late.test"]]);
    // Its transaction had taken u2's mark off: rolled back with the rest, it is still owed.
    assert.deepEqual(await marks(), ["u2@late.test"], "u2's mark lost: its report never goes");
    // The next pass plans again from what is there now: u2's report, once.
    assert.equal((await pass(NO_LEASES).run(OPTIONS)).dsnQueued, 1);
    assert.deepEqual(await reportedTo(node), [["u1@late.test"], ["u2@late.test"]]);
    assert.deepEqual(await marks(), []);
    assert.equal((await pass(NO_LEASES).run(OPTIONS)).dsnQueued, 0);
  },
);

/** The failure reports queued, oldest first: each one's Final-Recipient addresses. */
async function reportedTo(store: Parameters<typeof queueMessage>[0]): Promise<string[][]> {
  const out: string[][] = [];
  for (const q of await store.list()) {
    if (q.mailFrom !== "") continue;
    const dsn = parseDsn(await collectBytes(store.readBody(q.id)));
    out.push(dsn.perRecipient.map((g) => (g.get("final-recipient") ?? "").replace("rfc822; ", "")));
  }
  return out;
}
