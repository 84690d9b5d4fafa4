/**
 * Queue lifecycle end to end (issue 7): the real `serve` with a per-domain quota answers an
 * over-quota RCPT with 452 4.2.2 (temporary) while other domains keep accepting, and the
 * refused mail leaves nothing in the queue.
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { submit } from "../_helpers/smtp_submit.ts";

const enc = new TextEncoder();

Deno.test("serve answers 452 4.2.2 to an RCPT for a domain over its message quota", async () => {
  const server = await startServer({
    config: { domains: { "full.example": { quota: { messages: 1 } } } },
  });
  try {
    await addUser(server.configPath, "alice", ["full.example", "free.example"], "alice-pw");
    const port = server.smtp[0]?.port ?? 0;
    const body = enc.encode("Subject: quota\r\n\r\nhello\r\n");
    const first = await submit({ port, from: "s@far.test", to: ["a@full.example"], body });
    assertMatch(first.final ?? "", /^250 2\.6\.0 /);
    // At N=1 waiting message, the N+1th is refused at RCPT, temporarily.
    const second = await submit({ port, from: "s@far.test", to: ["b@full.example"], body });
    assertEquals(second.final, undefined);
    assertMatch(second.replies.at(-1) ?? "", /^452 4\.2\.2 /);
    const other = await submit({ port, from: "s@far.test", to: ["c@free.example"], body });
    assertMatch(other.final ?? "", /^250 2\.6\.0 /);
    const listed = await queueList(server.configPath);
    assertEquals(
      Array.isArray(listed)
        ? listed.flatMap((m) => m.recipients.map((r: { address: string }) => r.address)).sort()
        : listed,
      ["a@full.example", "c@free.example"],
    );
  } finally {
    await server.stop();
    await removeTestFiles(server);
  }
});
