/**
 * `serve` keeps serving when nobody reads its log any more (`odmr-relay serve 2>&1 | head`, a
 * log pipe whose reader died, a terminal that went away): the lines are lost, the MX is not. It
 * died with an uncaught BrokenPipe at the first line it logged after the reader closed (the
 * `queued` line of a message it had just acknowledged), exit 1, and took no more mail. The real
 * process: its stderr is read up to `ready`, then closed; a message is sent, then a second
 * one on a new connection, then SIGTERM must end it with 0 (CONTRACT: serve exits 0).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  addUser,
  parseListening,
  queueList,
  REPO_ROOT,
  writeTestConfig,
} from "../_helpers/server_process.ts";
import { submit } from "../_helpers/smtp_submit.ts";

const MESSAGE = new TextEncoder().encode("Subject: t\r\n\r\nbody\r\n");

Deno.test("serve goes on serving, and exits 0 on SIGTERM, after the reader of its log closed", async () => {
  const { configPath, dataDir } = await writeTestConfig();
  try {
    await addUser(configPath, "alice", ["example.org"]);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${REPO_ROOT}main.ts`, "serve", "--config", configPath],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    let log = "";
    let code: number | undefined;
    try {
      const reader = child.stderr.getReader();
      const decoder = new TextDecoder();
      while (!/event=ready\b/.test(log)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`serve ended before it was ready:\n${log}`);
        log += decoder.decode(value, { stream: true });
      }
      await reader.cancel();
      const [smtp] = parseListening(log).filter((l) => l.proto === "smtp");
      const port = smtp!.port;
      const finals = [];
      for (const to of ["bob@example.org", "carol@example.org"]) {
        const sent = await submit({ port, from: "a@example.net", to: [to], body: MESSAGE });
        finals.push(sent.final?.slice(0, 3));
      }
      assertEquals(finals, ["250", "250"]);
    } finally {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone (it died).
      }
      code = (await child.status).code;
    }
    assertEquals(code, 0);
    const waiting = await queueList(configPath) as { recipients: { address: string }[] }[];
    assertEquals(waiting.flatMap((m) => m.recipients.map((r) => r.address)).sort(), [
      "bob@example.org",
      "carol@example.org",
    ]);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(configPath);
  }
});
