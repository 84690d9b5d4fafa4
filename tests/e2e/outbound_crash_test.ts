/**
 * Stopping `serve` during outbound delivery loses nothing (issue 15). It is delivering a batch
 * to a slow receiving MTA (each 250 after the final dot comes late) when it is SIGKILLed: after
 * a restart on the same data every submitted message arrives; one may arrive twice only when
 * the receiver's 250 for it was sent before the kill (the relay could not record it): the
 * at-least-once promise of SMTP (RFC 5321 §6.1), never a silent loss. SIGTERM instead: the
 * message in flight finishes, serve exits well within its grace, the rest waits in the queue
 * and goes out after the restart, each message exactly once.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  type CaptureAck,
  type CaptureServer,
  startCaptureServer,
} from "../_helpers/capture_smtp.ts";
import {
  loopback,
  outboundServeConfig,
  startMxDns,
  submissionPort,
} from "../_helpers/outbound_world.ts";
import {
  addUser,
  queueList,
  removeTestFiles,
  type ServerProcess,
  startServer,
} from "../_helpers/server_process.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";
import { until } from "../_helpers/wait_until.ts";
import { numbered, subjectOf, submitAll } from "./_submission_client.ts";

const LOGIN = { user: "alice", password: "secret-password", from: "alice@example.org" };
const MESSAGES = 40;

/** One test's world: the receiving MTA, and the `serve` node delivering to it (restartable). */
interface World {
  /** Answers each final dot late, without PIPELINING (one message in flight at a time). */
  readonly sink: CaptureServer;
  readonly server: ServerProcess;
  /**
   * Starts `serve` again on the same data and config (after a stop or a kill), and waits
   * (bounded) until every message has been acknowledged at least once.
   */
  restartUntilAllAcked(): Promise<void>;
}

/** Where a crash test's mail goes, how slowly it is acknowledged, and when `fn` steps in. */
interface CrashSetup {
  readonly domain: string;
  /** The MX's address (port 25). */
  readonly ip: string;
  /** How late each 250 after a final dot comes. */
  readonly ackDelayMs: number;
  /** `fn` runs once this many messages were acknowledged: in the middle of the deliveries. */
  readonly afterAcks: number;
}

/**
 * Registers test `name` (needs dnsmasq, and root for port 25): `serve` takes MESSAGES
 * submitted messages (Subject: m0, m1, …) for `domain`, whose MX is a capture server on
 * `ip`:25, and `fn` runs once it has delivered `afterAcks` of them. Stops whatever runs after.
 */
function crashTest(
  name: string,
  setup: CrashSetup,
  fn: (world: World) => Promise<void>,
): Promise<void> {
  return toolTest(name, ["dnsmasq"], async () => {
    if (!canBindPort25(name, setup.ip)) return;
    await withSubmittedBatch(setup, fn);
  });
}

async function withSubmittedBatch(
  { domain, ip, ackDelayMs, afterAcks }: CrashSetup,
  fn: (world: World) => Promise<void>,
): Promise<void> {
  await using dns = await startMxDns({ [domain]: ip });
  const sink = await startCaptureServer({
    host: ip,
    port: 25,
    dataReplyDelayMs: ackDelayMs,
    pipelining: false,
  });
  const config = outboundServeConfig(dns);
  let server = await startServer({ config });
  const world: World = {
    sink,
    get server() {
      return server;
    },
    async restartUntilAllAcked() {
      server = await startServer({
        config,
        dataDir: server.dataDir,
        configPath: server.configPath,
      });
      await until(
        "every message",
        () => new Set(ackedSubjects(sink.acks)).size >= MESSAGES,
        30_000,
      );
    },
  };
  try {
    await addUser(server.configPath, LOGIN.user, ["example.org"], LOGIN.password);
    await submitAll(submissionPort(server), LOGIN, numbered("m", domain, MESSAGES));
    await until("a few deliveries", () => sink.acks.length >= afterAcks, 30_000);
    await fn(world);
  } finally {
    await server.stop();
    await removeTestFiles(server);
    await sink.close();
  }
}

/** The subjects the receiver acknowledged with its 250 (a repeat: acknowledged twice). */
function ackedSubjects(acks: readonly CaptureAck[]): string[] {
  return acks.map((a) => subjectOf(a.message.body) ?? "");
}

/** The queue's waiting recipients for `domain` once `count` of them are left (bounded). */
async function waitingFor(server: ServerProcess, domain: string, count: number) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const list = await queueList(server.configPath, domain) as {
      recipients: { address: string; status: string }[];
    }[];
    const left = list.flatMap((m) => m.recipients);
    if (left.length === count || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 200));
  }
}

await crashTest(
  "kill -9 during outbound delivery: after a restart every message arrives",
  // In the middle of the deliveries (each takes at least the 50 ms ack delay): a crash.
  { domain: "crash.test", ip: loopback(54), ackDelayMs: 50, afterAcks: 5 },
  async (world) => {
    const { sink } = world;
    assert(sink.acks.length < MESSAGES, "the crash came too late to test anything");
    await world.server.kill9();
    const killedAt = Date.now();
    await world.restartUntilAllAcked();
    const bySubject = new Map<string, CaptureAck[]>();
    for (const [i, subject] of ackedSubjects(sink.acks).entries()) {
      bySubject.set(subject, [...(bySubject.get(subject) ?? []), sink.acks[i]!]);
    }
    assertEquals(
      [...bySubject.keys()].sort(),
      numbered("m", "crash.test", MESSAGES).map((m) => m.subject).sort(),
    );
    // A second 250 for a message only when the first one reached the receiver before the kill.
    for (const [subject, acks] of bySubject) {
      for (const early of acks.slice(0, -1)) {
        assert(early.at <= killedAt, `${subject} arrived twice without a crash in between`);
      }
    }
    // Nothing of it is left waiting (settled as delivered after the restart).
    assertEquals(await waitingFor(world.server, "crash.test", 0), []);
  },
);

await crashTest(
  "SIGTERM during outbound delivery: the rest stays queued, each message once",
  { domain: "term.test", ip: loopback(55), ackDelayMs: 100, afterAcks: 3 },
  async (world) => {
    const { sink } = world;
    const stoppingAt = Date.now();
    assertEquals(await world.server.stop(), 0);
    const tookMs = Date.now() - stoppingAt;
    // The message in flight (and one pipelined behind it) finish; nothing waits for the batch.
    assert(tookMs < 5_000, `serve took ${tookMs} ms to stop`);
    const delivered = new Set(ackedSubjects(sink.acks));
    assert(delivered.size < MESSAGES, "everything went out before the stop: nothing was tested");
    assertEquals(sink.acks.length, delivered.size);
    // Every 250 was recorded before the exit: exactly the others wait, still queued.
    const left = await waitingFor(world.server, "term.test", MESSAGES - delivered.size);
    assertEquals(left.length, MESSAGES - delivered.size);
    assert(left.every((r) => r.status === "queued"), JSON.stringify(left));
    for (const r of left) assert(!delivered.has(`m${r.address.slice(1, r.address.indexOf("@"))}`));
    await world.restartUntilAllAcked();
    assertEquals(await waitingFor(world.server, "term.test", 0), []);
    // Graceful: not one message twice.
    assertEquals(sink.acks.length, MESSAGES);
  },
);
