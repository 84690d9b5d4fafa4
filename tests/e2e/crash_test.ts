/**
 * E2E crash safety (docs/architecture.md "Conventions"): clients stream messages and record every
 * 250 after DATA; the server is killed with SIGKILL mid-stream and restarted on the same data
 * dir; every acknowledged message must be in the queue. Bounded in count and time.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { SmtpSession } from "./_smtp_session.ts";

const CLIENTS = 3;
const MAX_MESSAGES_PER_CLIENT = 400;
const KILL_AFTER_ACKS = 30;
const STREAM_DEADLINE_MS = 30_000;

Deno.test("kill -9 during a stream of messages loses nothing that got 250", async () => {
  const first = await startServer();
  let second: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    await addUser(first.configPath, "alice", ["example.org"]);
    const port = (first.smtp[0] ?? { port: 0 }).port;
    const acked = new Set<string>();
    const sent = new Set<string>();
    let killed: Promise<void> | undefined;
    const deadline = Date.now() + STREAM_DEADLINE_MS;

    const client = async (c: number) => {
      const { session } = await SmtpSession.open(port);
      try {
        await session.command("EHLO client.test");
        for (let i = 0; i < MAX_MESSAGES_PER_CLIENT && Date.now() < deadline; i++) {
          const from = `c${c}-m${i}@sender.test`;
          sent.add(from);
          const body = `Subject: crash ${c}/${i}\r\n\r\n${"line of text\r\n".repeat(50)}`;
          const reply = await session.sendMessage(from, "bob@example.org", body);
          if (!reply.startsWith("250")) throw new Error(`unexpected reply: ${reply}`);
          acked.add(from);
          if (acked.size >= KILL_AFTER_ACKS && killed === undefined) killed = first.kill9();
        }
      } catch {
        // The server died under us: exactly what this test does.
      } finally {
        session.close();
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    assert(killed !== undefined, `the server was killed (acks: ${acked.size})`);
    await killed;
    assert(sent.size < CLIENTS * MAX_MESSAGES_PER_CLIENT, "the kill cut the stream short");

    second = await startServer({ dataDir: first.dataDir });
    const queued = new Set(
      (await queueList(second.configPath) as { from: string }[]).map((m) => m.from),
    );
    const lost = [...acked].filter((from) => !queued.has(from));
    assertEquals(lost, [], `acknowledged but lost after kill -9 (acked ${acked.size})`);
    for (const from of queued) assert(sent.has(from), `queued only what was sent: ${from}`);
    // deno-lint-ignore no-console -- the figures say how much the crash had in flight
    console.log(`kill -9: ${sent.size} sent, ${acked.size} acknowledged, ${queued.size} queued`);
  } finally {
    if (second) assertEquals(await second.stop(), 0, second.logs());
    else await first.kill9();
    await removeTestFiles(first);
  }
});
