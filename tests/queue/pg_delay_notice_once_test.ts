/**
 * A message's delay notice goes out once, also when two nodes' maintenance passes plan it at
 * the same time. The passes take turns by a session advisory lock, but a pass whose lock
 * session the server ended (a restart, `pg_terminate_backend`, `idle_session_timeout` on a
 * managed server) goes on with what it planned while another node's pass takes the lock. The
 * pass read `delay_notified` before its transaction and set it there without looking again:
 * both passes queued a delay notice, so the sender got two. (A failure report is safe: its
 * transaction re-checks each recipient's status and the owed-report marks it takes off.)
 */
import assert from "node:assert/strict";
import type { LeasedDomains } from "../../src/queue/_rows.ts";
import { maintenanceOptions, queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";
import { until } from "../_helpers/wait_until.ts";
import { expiryNodesTest, ReaderWithHook } from "./_pg_expiry_nodes.ts";

const HOUR_MS = 3_600_000;
/** The maintenance pass's advisory lock (src/queue/pg/_maintenance.ts MAINTENANCE_LOCK). */
const MAINTENANCE_LOCK = 0x6f646d73;
const OPTIONS = maintenanceOptions({ isLocalDomain: (d) => d === "sender.test" });
const NO_LEASES = () => Promise.resolve<LeasedDomains>({ atrn: new Set(), mx: new Set(), now: 0 });

await expiryNodesTest(
  "PostgreSQL: a delay notice planned by two nodes' passes at once goes out once",
  "delay_notice_once",
  // Waiting 5 hours: past delay_notice (4 h in maintenanceOptions), before outbound.max_age.
  5 * HOUR_MS,
  async ({ old, sql, raw, pass }) => {
    await queueMessage(old, { from: "s@sender.test", to: [rcpt("r@far.test", { route: "mx" })] });
    let other: string | undefined;
    // Pass A has read the message's flag and reads its body for the notice: its lock session
    // ends, and the other node's pass runs whole meanwhile.
    const otherNode = async () => {
      await raw`SELECT pg_terminate_backend(pid) FROM pg_locks
        WHERE locktype = 'advisory' AND objid = ${MAINTENANCE_LOCK} AND granted`;
      // The lock goes with the session, once its backend has exited.
      await until("the pass's lock session to end", async () => {
        const [held] = await raw`SELECT count(*)::int AS n FROM pg_locks
          WHERE locktype = 'advisory' AND objid = ${MAINTENANCE_LOCK} AND granted`;
        return held?.n === 0;
      });
      const report = await pass(NO_LEASES).run(OPTIONS);
      other = `delay notices ${report.delayNotices}`;
    };
    await pass(NO_LEASES, new ReaderWithHook(sql, otherNode)).run(OPTIONS).catch(() => {});
    assert.equal(other, "delay notices 1", "the other node's pass sent the notice");
    const notices = await raw`SELECT count(*)::int AS n FROM messages WHERE mail_from = ''`;
    const [flag] = await raw`SELECT delay_notified FROM messages WHERE mail_from <> ''`;
    assert.deepEqual(
      { notices: notices[0]?.n, flagged: flag?.delay_notified },
      { notices: 1, flagged: true },
      "the sender got two delay notices",
    );
  },
);
