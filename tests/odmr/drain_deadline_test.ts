/**
 * (note 19, SECURITY.md "Left open") The drain has a deadline on progress, `odmr.drain_timeout`:
 * the customer must finish a message (its final reply) within that time of the previous one (or of
 * the reversal), plus a second for every 10 KB of the messages in flight. A customer that answers
 * each command just within `smtp.timeout` held its domains' lease for as long as the queue lasted
 * (each of its waits bounded, their sum not); now the connection is dropped at the deadline, the
 * messages in flight stay queued, and `drain_stopped reason=timeout` is logged. A drain that keeps
 * finishing messages is never cut, however long it runs. Over a connPair; the customer answers each
 * command after a fixed pause, and the deadlines leave a wide margin either way.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { connPair, type MemoryConn } from "../_helpers/conn_pair.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { drainLease, type DrainOptions } from "../../src/odmr/drain.ts";
import { NO_EVENTS } from "../../src/odmr/events.ts";
import type { Lease, Settlement } from "../../src/queue/types.ts";
import { queuedMessage } from "./_drain_fixture.ts";
import { DrainDeadline } from "../../src/odmr/_drain_deadline.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A lease of `count` small messages that records its settlements. */
function recordingLease(count: number): { lease: Lease; settled: Settlement[] } {
  const settled: Settlement[] = [];
  return {
    settled,
    lease: {
      domains: ["customer.test"],
      async *messages() {
        for (let n = 1; n <= count; n++) yield queuedMessage(n, 6);
      },
      async *readBody() {
        yield enc.encode("Hi\r\n");
      },
      renew: () => Promise.resolve(true),
      settle(results) {
        settled.push(...results);
        return Promise.resolve();
      },
      release: () => Promise.resolve(),
    },
  };
}

/** A lock-step customer (no PIPELINING) that answers every command `pauseMs` after reading it. */
async function slowCustomer(conn: MemoryConn, pauseMs: number): Promise<void> {
  const reader = new LineReader(conn);
  const say = async (text: string) => {
    await new Promise((r) => setTimeout(r, pauseMs));
    await conn.write(enc.encode(text));
  };
  try {
    await say("220 customer.test ESMTP\r\n");
    for (;;) {
      const line = await reader.readLine(1000, 30_000);
      if (line.kind !== "line") return;
      const verb = dec.decode(line.line).split(" ")[0]?.toUpperCase();
      if (verb === "EHLO") await say("250 customer.test\r\n");
      else if (verb === "QUIT") return await say("221 2.0.0 bye\r\n");
      else if (verb === "DATA") {
        await say("354 go ahead\r\n");
        for (;;) {
          const body = await reader.readLine(1000, 30_000);
          if (body.kind !== "line") return;
          if (dec.decode(body.line) === ".") break;
        }
        await say("250 2.0.0 OK\r\n");
      } else await say("250 2.0.0 OK\r\n");
    }
  } catch {
    // The provider dropped the connection: what the test is about.
  }
}

async function drain(count: number, pauseMs: number, drainTimeoutMs: number) {
  const l = recordingLease(count);
  const { client, server } = connPair();
  const customer = slowCustomer(server, pauseMs);
  const events: RecordedEvent[] = [];
  const options = {
    hostname: "provider.test",
    lineRecords: false,
    leaseSeconds: 60,
    commandTimeoutMs: 30_000,
    drainTimeoutMs,
  } as DrainOptions["options"];
  const summary = await drainLease({
    conn: client,
    reader: new LineReader(client),
    lease: l.lease,
    user: "customer",
    log: recordingLogger(events),
    events: NO_EVENTS,
    options,
  });
  client.destroy();
  await customer;
  return { summary, settled: l.settled, events };
}

Deno.test("drain: a customer that never finishes a message within odmr.drain_timeout is dropped; its mail stays queued", async () => {
  // Each message takes four answers of 400 ms: 1.6 s, past the 1 s deadline; each answer comes
  // well within the 30 s command timeout. Before: all three went, ~6 s.
  const { summary, settled, events } = await drain(3, 400, 1_000);
  assertEquals(summary.connectionLost, true);
  assertEquals(summary.delivered, 0);
  assertEquals(settled.filter((s) => s.outcome === "delivered"), []);
  const stopped = events.find((e) => e.event === "drain_stopped");
  assert(stopped !== undefined, JSON.stringify(events.map((e) => e.event)));
  assertEquals(stopped.fields.reason, "timeout");
  assertEquals(stopped.fields.user, "customer");
});

Deno.test("drain: a long drain that keeps finishing messages is not cut by odmr.drain_timeout", async () => {
  // Eight messages of four 60 ms answers: ~2.1 s in all, twice the 1 s deadline, yet each
  // message is finished ~0.25 s after the one before.
  const { summary, events } = await drain(8, 60, 1_000);
  assertEquals(summary.delivered, 8);
  assertEquals(summary.connectionLost, false);
  assertEquals(events.filter((e) => e.event === "drain_stopped"), []);
});

Deno.test("drain deadline: a second per 10 KB in flight on top of odmr.drain_timeout, from the last message finished", () => {
  let now = 1_000_000;
  const d = new DrainDeadline(60_000, () => {}, () => now);
  try {
    assertEquals(d.deadline, now + 60_000);
    d.sent(50_000); // 5 s at 10 KB/s
    d.sent(10_000);
    assertEquals(d.deadline, 1_000_000 + 60_000 + 6_000);
    now += 30_000;
    d.finished(50_000);
    assertEquals(d.deadline, now + 60_000 + 1_000);
    assertEquals(d.finishedCount, 1);
    assertEquals(d.hasExpired, false);
  } finally {
    d.stop();
  }
});
