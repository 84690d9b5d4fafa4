/**
 * A transaction with more recipients than `max_recipients` (N), on the real `serve`'s MX port
 * and submission port: the RCPTs past N get `452 4.5.3` and the client sends them in a later
 * transaction (RFC 5321 §4.5.3.1.10). Those 452s are no protocol error: counted as such, the
 * 11th one ended the session with `421` (about the (N+11)th RCPT), before the message of the
 * first N was even sent. Past the recipient budget (N + 100 + 1000 RCPTs between accepted
 * messages, docs/QUIRKS.md) a flood still ends, with a `421 4.7.0` that says why.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { submissionPort } from "../_helpers/outbound_world.ts";
import {
  addUser,
  queueList,
  removeTestFiles,
  type ServerProcess,
  startServer,
} from "../_helpers/server_process.ts";
import { SmtpSession } from "./_smtp_session.ts";
import { cramSession } from "./_submission_client.ts";

const N = 100;
const PASSWORD = "secret-password";
const TOO_MANY_RCPT = "452 4.5.3 Too many recipients";

type Listed = { recipients: { address: string }[] }[];

/**
 * Sends `lines` in one write (PIPELINING, RFC 2920) and reads one reply per line ("(closed)"
 * and no more once the server closed).
 */
async function pipelined(s: SmtpSession, lines: readonly string[]): Promise<string[]> {
  await s.send(lines.map((l) => `${l}\r\n`).join(""));
  const replies: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const r = await s.readReply().catch(() => "(closed)");
    replies.push(r);
    if (r === "(closed)") break;
  }
  return replies;
}

/** Counts of each distinct reply, in order of first appearance: "250 … ×100 | 452 … ×50". */
function tally(replies: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const r of replies) counts.set(r, (counts.get(r) ?? 0) + 1);
  return [...counts].map(([r, n]) => `${r} ×${n}`).join(" | ");
}

/**
 * One session: 150 RCPTs in one pipelined transaction (N taken, 50 refused 452), DATA delivers
 * to the N; a second transaction takes the other 50; the session goes on (QUIT → 221).
 */
async function overshootAndRetry(s: SmtpSession, from: string, domain: string): Promise<void> {
  const to = Array.from({ length: 150 }, (_, i) => `r${i}@${domain}`);
  const first = await pipelined(s, [
    `MAIL FROM:<${from}>`,
    ...to.map((a) => `RCPT TO:<${a}>`),
    "DATA",
  ]);
  assertEquals(
    tally(first),
    `250 2.1.0 Sender OK ×1 | 250 2.1.5 Recipient OK ×${N} | ${TOO_MANY_RCPT} ×50 | ` +
      "354 Start mail input; end with <CRLF>.<CRLF> ×1",
  );
  assertEquals(first.slice(1, N + 1).every((r) => r.startsWith("250")), true, "the first N");
  match(await s.command("Subject: first\r\n\r\nto the first 100\r\n."), /^250 /);
  // The client sends the refused ones in a later transaction (RFC 5321 §4.5.3.1.10).
  const second = await pipelined(s, [
    `MAIL FROM:<${from}>`,
    ...to.slice(N).map((a) => `RCPT TO:<${a}>`),
    "DATA",
  ]);
  assertEquals(
    tally(second),
    tally(["250 2.1.0 Sender OK", ...Array(50).fill("250 2.1.5 Recipient OK")]) +
      " | 354 Start mail input; end with <CRLF>.<CRLF> ×1",
  );
  match(await s.command("Subject: second\r\n\r\nto the other 50\r\n."), /^250 /);
  match(await s.command("QUIT"), /^221 /);
}

/** What the queue holds for `domain`: each message's recipient count, largest first. */
async function queuedCounts(server: ServerProcess, domain: string): Promise<number[]> {
  const listed = await queueList(server.configPath, domain) as Listed;
  return listed.map((m) => m.recipients.length).sort((a, b) => b - a);
}

async function withServer(fn: (server: ServerProcess) => Promise<void>): Promise<void> {
  const server = await startServer({
    config: {
      smtp: { max_recipients: N },
      submission: { listen: ["127.0.0.1:0"], max_recipients: N, max_recipients_per_hour: 10_000 },
    },
  });
  try {
    await addUser(server.configPath, "alice", ["example.org"], PASSWORD);
    await addUser(server.configPath, "bob", ["example.com"], PASSWORD);
    await fn(server);
  } finally {
    await server.stop();
    await removeTestFiles(server);
  }
}

Deno.test("max_recipients 100, 150 RCPTs pipelined: 100 × 250, 50 × 452 4.5.3, DATA delivers to the 100 and the next transaction takes the other 50 (MX port, submission port)", async (t) => {
  await withServer(async (server) => {
    await t.step("MX port", async () => {
      const { session } = await SmtpSession.open(server.smtp[0]!.port);
      using s = session;
      match(await s.command("EHLO client.test"), /^250 /);
      await overshootAndRetry(s, "sender@elsewhere.test", "example.org");
      assertEquals(await queuedCounts(server, "example.org"), [N, 50]);
    });
    await t.step("submission port, logged in", async () => {
      using s = await cramSession(submissionPort(server), "alice", PASSWORD);
      await overshootAndRetry(s, "alice@example.org", "example.com");
      assertEquals(await queuedCounts(server, "example.com"), [N, 50]);
    });
  });
});

Deno.test("a flood of RCPTs still ends: past N + 100 + 1000 between accepted messages, 421 4.7.0 says too many recipients (MX port)", async () => {
  await withServer(async (server) => {
    const { session } = await SmtpSession.open(server.smtp[0]!.port);
    using s = session;
    match(await s.command("EHLO client.test"), /^250 /);
    const budget = N + 100 + 1000;
    await s.send("MAIL FROM:<flood@elsewhere.test>\r\n");
    match(await s.readReply(), /^250 /);
    const replies: string[] = [];
    // Batches of 100, read before the next is written: bounded, and the server's replies
    // never fill a socket buffer that nobody reads.
    for (let i = 0; i < budget + 100 && replies.at(-1)?.startsWith("421") !== true; i += 100) {
      const batch = Array.from({ length: 100 }, (_, j) => `RCPT TO:<f${i + j}@example.org>`);
      await s.send(batch.map((l) => `${l}\r\n`).join(""));
      for (let j = 0; j < batch.length; j++) {
        const r = await s.readReply().catch(() => "(closed)");
        replies.push(r);
        if (!r.startsWith("2") && !r.startsWith("452")) break;
      }
    }
    assertEquals(
      tally(replies),
      `250 2.1.5 Recipient OK ×${N} | ${TOO_MANY_RCPT} ×${budget - N} | ` +
        "421 4.7.0 Too many recipients without a message, closing connection ×1",
    );
    assert(await s.readReply().then(() => false, () => true), "the session ended");
  });
});
