/**
 * Two `serve` nodes on one PostgreSQL database, both with an outbound worker (issue 15): mail
 * submitted to either node goes out exactly once (outbound leases are cluster-wide), and after
 * `kill -9` of the node delivering a batch the other one delivers the rest once the lease has
 * run out. The receiving MTA is a byte-exact capture server on port 25 of an address of this
 * process's own (loopback()), one per test: neither a second run beside this one nor the first
 * test's listener still closing can take the second one's port.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import {
  loopback,
  outboundServeConfig,
  startMxDns,
  submissionPort,
} from "../_helpers/outbound_world.ts";
import { type PostgresCluster, postgresTest } from "../_helpers/postgres.ts";
import { withTwoNodes } from "../_helpers/postgres_nodes.ts";
import { addUser, queueList, type ServerProcess } from "../_helpers/server_process.ts";
import { canBindPort25 } from "../_helpers/tools.ts";
import { until } from "../_helpers/wait_until.ts";
import { numbered, subjectOf, submitAll, type Submitted } from "./_submission_client.ts";

const PASSWORD = "secret-password";
const LOGIN = { user: "alice", password: PASSWORD, from: "alice@example.org" };

/** The subjects the capture server took, in order (one line each). */
function subjectsOf(messages: readonly { body: Uint8Array }[]): string[] {
  return messages.map((m) => subjectOf(m.body)).filter((s) => s !== undefined);
}

/** Submits through `node`, retrying while its copy of the users does not know alice yet. */
async function submitWhenKnown(node: ServerProcess, messages: readonly Submitted[]) {
  let last: unknown;
  for (let i = 0; i < 100; i++) {
    try {
      return await submitAll(submissionPort(node), LOGIN, messages);
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw last;
}

/** Both nodes delivering through dnsmasq (pgout.test's MX: `mx`), alice added. */
async function withNodes(
  pg: PostgresCluster,
  db: string,
  mx: string,
  fn: (a: ServerProcess, b: ServerProcess) => Promise<void>,
): Promise<void> {
  await using dns = await startMxDns({ "pgout.test": mx });
  const sections = { ...outboundServeConfig(dns), queue: { lease_time: "4s" } };
  await withTwoNodes(pg, db, sections, async (a, b) => {
    await addUser(a.configPath, "alice", ["example.org"], PASSWORD);
    await fn(a, b);
  });
}

const batch = (prefix: string, n: number): Submitted[] => numbered(prefix, "pgout.test", n);

await postgresTest(
  "two serve nodes on one PostgreSQL deliver submitted mail to the world exactly once (issue 15)",
  async (pg) => {
    const mx = loopback(56);
    if (!canBindPort25("outbound on two PostgreSQL nodes", mx)) return;
    const sink = await startCaptureServer({ host: mx, port: 25 });
    try {
      await withNodes(pg, "outbound_once", mx, async (a, b) => {
        // Both workers see both nodes' mail: the one that holds the lease sends it.
        await Promise.all([
          submitWhenKnown(a, batch("a", 15)),
          submitWhenKnown(b, batch("b", 15)),
        ]);
        // Generous under a loaded CI machine (two nodes, PostgreSQL, dnsmasq, the whole
        // suite beside them); what is asserted is exactly-once, not speed. On a timeout the
        // nodes' outbound log lines and the queue say why.
        await until("30 messages", () => sink.messages.length >= 30, 120_000).catch(
          async (err) => {
            const outbound = (node: ServerProcess) =>
              node.logs().split("\n").filter((l) => /outbound|deferred|failed|dsn|error/.test(l))
                .slice(-40).join("\n");
            const queue = JSON.stringify(await queueList(a.configPath, "pgout.test"));
            throw new Error(
              `${err}: ${sink.messages.length} arrived\nqueue: ${queue}\n` +
                `node A:\n${outbound(a)}\nnode B:\n${outbound(b)}`,
            );
          },
        );
        const want = [...batch("a", 15), ...batch("b", 15)].map((m) => m.subject).sort();
        await until(
          "the shared queue to empty",
          async () => (await queueList(a.configPath, "pgout.test") as unknown[]).length === 0,
          30_000,
        );
        // Nothing more trickles in afterwards.
        assertEquals(subjectsOf(sink.messages).sort(), want);
      });
    } finally {
      await sink.close();
    }
  },
);

await postgresTest(
  "kill -9 of the node delivering to the world: the other delivers the rest after the lease (issue 15)",
  async (pg) => {
    const mx = loopback(57);
    if (!canBindPort25("outbound kill -9 on two PostgreSQL nodes", mx)) return;
    // Each 250 after the final dot comes 200 ms late: A is mid-batch when it dies.
    const sink = await startCaptureServer({
      host: mx,
      port: 25,
      dataReplyDelayMs: 200,
      pipelining: false,
    });
    try {
      await withNodes(pg, "outbound_crash", mx, async (a, b) => {
        // Submitted to A, which is woken at once; B's worker finds it at its next look.
        await submitWhenKnown(a, batch("k", 20));
        await until("a few deliveries", () => sink.messages.length >= 2, 30_000);
        const before = sink.messages.length;
        await a.kill9();
        // Mail keeps coming through B, whose worker is woken by it and then finds A's batch
        // leased until the lease runs out (queue.lease_time 4s), and takes it over.
        await submitWhenKnown(b, [{ to: "late@pgout.test", subject: "k20" }]);
        const want = [...batch("k", 20).map((m) => m.subject), "k20"].sort();
        await until("every message", () => new Set(subjectsOf(sink.messages)).size >= 21, 30_000);
        const subjects = subjectsOf(sink.messages);
        assertEquals([...new Set(subjects)].sort(), want);
        // At most the message in flight at the kill arrives twice (its 250 was not recorded).
        assert(subjects.length - 21 <= 1, `${subjects.length - 21} duplicates`);
        assert(before < 20, "the kill came after everything was sent: nothing was tested");
        await until(
          "the shared queue to empty",
          async () => (await queueList(b.configPath, "pgout.test") as unknown[]).length === 0,
          30_000,
        );
      });
    } finally {
      await sink.close();
    }
  },
);
