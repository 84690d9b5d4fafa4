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
import net from "node:net";
import { startDnsmasq } from "../_helpers/dnsmasq.ts";
import {
  addUser,
  queueList,
  removeTestFiles,
  type ServerProcess,
  startServer,
} from "../_helpers/server_process.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";
import { submitAll } from "./_submission_client.ts";

const PASSWORD = "secret-password";
const MESSAGES = 40;

/** One 250 the receiver sent after a final dot: which message, and when. */
interface Ack {
  readonly subject: string;
  readonly at: number;
}

/** A minimal SMTP receiver (no PIPELINING) that answers each final dot late. */
async function startSlowSink(
  host: string,
  ackDelayMs: number,
): Promise<{ acks: Ack[]; close(): Promise<void> }> {
  const acks: Ack[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buffer = "";
    let inData = false;
    let subject = "";
    socket.write("220 slow.test ESMTP\r\n");
    socket.on("data", (chunk: Uint8Array) => {
      buffer += new TextDecoder().decode(chunk);
      let at: number;
      while ((at = buffer.indexOf("\r\n")) >= 0) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        if (inData) {
          if (line === ".") {
            inData = false;
            const s = subject;
            setTimeout(() => {
              if (socket.destroyed) return;
              acks.push({ subject: s, at: Date.now() });
              socket.write("250 2.0.0 Queued\r\n");
            }, ackDelayMs);
          } else if (line.startsWith("Subject: ")) subject = line.slice(9);
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO") socket.write("250-slow.test\r\n250 8BITMIME\r\n");
        else if (verb === "DATA") {
          inData = true;
          subject = "";
          socket.write("354 Go ahead\r\n");
        } else if (verb === "QUIT") socket.end("221 2.0.0 Bye\r\n");
        else socket.write("250 2.0.0 OK\r\n");
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(25, host, () => resolve());
  });
  return {
    acks,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Submits MESSAGES messages (Subject: m0, m1, …) to `domain` as alice, in one session. */
async function submitMany(server: ServerProcess, domain: string): Promise<void> {
  const port = server.listening.find((l) => l.proto === "submission")?.port ?? 0;
  await submitAll(
    port,
    { user: "alice", password: PASSWORD, from: "alice@example.org" },
    Array.from({ length: MESSAGES }, (_, i) => ({ to: `u${i}@${domain}`, subject: `m${i}` })),
  );
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

async function until(what: string, check: () => boolean, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

await toolTest("kill -9 during outbound delivery: after a restart every message arrives", [
  "dnsmasq",
], async () => {
  if (!canBindPort25("outbound kill -9", "127.0.0.54")) return;
  await using dns = await startDnsmasq({
    mx: [{ name: "crash.test", host: "mx.crash.test", preference: 10 }],
    hosts: [{ name: "mx.crash.test", addresses: ["127.0.0.54"] }],
  });
  const sink = await startSlowSink("127.0.0.54", 50);
  const config = {
    submission: { listen: ["127.0.0.1:0"] },
    outbound: { resolver: dns.address, retry: ["1s"] },
  };
  let server = await startServer({ config });
  try {
    await addUser(server.configPath, "alice", ["example.org"], PASSWORD);
    await submitMany(server, "crash.test");
    // In the middle of the deliveries (each takes at least ACK_DELAY_MS): a crash.
    await until("a few deliveries", () => sink.acks.length >= 5);
    assert(sink.acks.length < MESSAGES, "the crash came too late to test anything");
    await server.kill9();
    const killedAt = Date.now();
    server = await startServer({ config, dataDir: server.dataDir, configPath: server.configPath });
    await until("every message", () => new Set(sink.acks.map((a) => a.subject)).size >= MESSAGES);
    const bySubject = new Map<string, Ack[]>();
    for (const a of sink.acks) bySubject.set(a.subject, [...(bySubject.get(a.subject) ?? []), a]);
    assertEquals(
      [...bySubject.keys()].sort(),
      Array.from({ length: MESSAGES }, (_, i) => `m${i}`).sort(),
    );
    // A second 250 for a message only when the first one reached the receiver before the kill.
    for (const [subject, acks] of bySubject) {
      for (const early of acks.slice(0, -1)) {
        assert(early.at <= killedAt, `${subject} arrived twice without a crash in between`);
      }
    }
    // Nothing of it is left waiting (settled as delivered after the restart).
    assertEquals(await waitingFor(server, "crash.test", 0), []);
  } finally {
    await server.stop();
    await removeTestFiles(server);
    await sink.close();
  }
});

await toolTest("SIGTERM during outbound delivery: the rest stays queued, each message once", [
  "dnsmasq",
], async () => {
  if (!canBindPort25("outbound SIGTERM", "127.0.0.55")) return;
  await using dns = await startDnsmasq({
    mx: [{ name: "term.test", host: "mx.term.test", preference: 10 }],
    hosts: [{ name: "mx.term.test", addresses: ["127.0.0.55"] }],
  });
  const sink = await startSlowSink("127.0.0.55", 100);
  const config = {
    submission: { listen: ["127.0.0.1:0"] },
    outbound: { resolver: dns.address, retry: ["1s"] },
  };
  let server = await startServer({ config });
  try {
    await addUser(server.configPath, "alice", ["example.org"], PASSWORD);
    await submitMany(server, "term.test");
    await until("a few deliveries", () => sink.acks.length >= 3);
    const stoppingAt = Date.now();
    assertEquals(await server.stop(), 0);
    const tookMs = Date.now() - stoppingAt;
    // The message in flight (and one pipelined behind it) finish; nothing waits for the batch.
    assert(tookMs < 5_000, `serve took ${tookMs} ms to stop`);
    const delivered = new Set(sink.acks.map((a) => a.subject));
    assert(delivered.size < MESSAGES, "everything went out before the stop: nothing was tested");
    assertEquals(sink.acks.length, delivered.size);
    // Every 250 was recorded before the exit: exactly the others wait, still queued.
    const left = await waitingFor(server, "term.test", MESSAGES - delivered.size);
    assertEquals(left.length, MESSAGES - delivered.size);
    assert(left.every((r) => r.status === "queued"), JSON.stringify(left));
    for (const r of left) assert(!delivered.has(`m${r.address.slice(1, r.address.indexOf("@"))}`));
    server = await startServer({ config, dataDir: server.dataDir, configPath: server.configPath });
    await until("every message", () => new Set(sink.acks.map((a) => a.subject)).size >= MESSAGES);
    assertEquals(await waitingFor(server, "term.test", 0), []);
    // Graceful: not one message twice.
    assertEquals(sink.acks.length, MESSAGES);
  } finally {
    await server.stop();
    await removeTestFiles(server);
    await sink.close();
  }
});
