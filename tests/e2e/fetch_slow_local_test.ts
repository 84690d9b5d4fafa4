/**
 * Two real processes, `serve` and `fetch --once`, with a slow local MTA behind fetch (150 ms per
 * message) and the provider's `smtp.timeout` at 2 s. The provider keeps up to 64 messages in
 * flight and its deadline runs for each reply, so fetch must not hold its replies while it works
 * through them one slow message at a time (#13: it answered every ~25 messages, the drain timed
 * out and the same 64 messages were delivered again at every poll).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { runFetchOnce } from "../_helpers/fetch_process.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { submit } from "../_helpers/smtp_submit.ts";

const MESSAGES = 70;

Deno.test("fetch --once behind a slow local MTA: the windowed drain ends, each message delivered once (#13)", async () => {
  const server = await startServer({ config: { smtp: { timeout: "2s" } } });
  const dir = await Deno.makeTempDir({ prefix: "odmr-fetch-slow-" });
  const capture = await startCaptureServer({ pipelining: false, dataReplyDelayMs: 150 });
  try {
    await addUser(server.configPath, "alice", ["example.org", "example.com"], "alice-pw");
    const body = new TextEncoder().encode("Subject: slow\r\n\r\nhello\r\n");
    for (let i = 0; i < MESSAGES; i++) {
      const r = await submit({
        port: server.smtp[0]!.port,
        from: "s@remote.test",
        to: [`u${i}@example.org`],
        body,
      });
      assertEquals(r.final?.slice(0, 3), "250", r.replies.join(" | "));
    }
    const run = await runFetchOnce(dir, {
      server: `127.0.0.1:${server.odmr[0]!.port}`,
      "deliver_to": `smtp://127.0.0.1:${capture.port}`,
    });
    assertEquals(run.code, 0, run.stderr);
    const got = capture.messages.map((m) => m.recipients.join(",")).sort();
    const want = Array.from({ length: MESSAGES }, (_, i) => `u${i}@example.org`).sort();
    assertEquals(got, want);
    assertEquals(await queueList(server.configPath), []);
  } finally {
    await capture.close();
    await server.stop();
    await removeTestFiles(server);
    await Deno.remove(dir, { recursive: true });
  }
});
