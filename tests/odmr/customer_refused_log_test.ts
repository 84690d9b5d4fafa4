/**
 * `fetch` logs a message its own receiver refused (a line over 1000 octets, a bare CR or LF,
 * a body over its size limit) as it logs one the local side refused: one `refused` line with the
 * sender, the recipients and the reason, and a `failed` count in `fetch_done` (the provider
 * bounces it). It logged nothing and counted nothing: the message was bounced at the provider
 * while the customer's log said every message was fine. The real `fetch --once` process against
 * a scripted provider, into a Maildir.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import YAML from "yaml";
import { runMain } from "../_helpers/server_process.ts";
import { startScriptedProvider } from "../_helpers/scripted_provider.ts";
import type { ScriptMessage } from "../_helpers/scripted_provider.ts";

const enc = new TextEncoder();
const USER = "alice";
const PASSWORD = "alice-pw";

type LogLine = Record<string, unknown>;

/** Runs one `fetch --once` into a Maildir: the customer's final replies and its JSON log lines. */
async function fetchLogs(
  messages: ScriptMessage[],
): Promise<{ finals: number[]; lines: LogLine[] }> {
  const dir = await Deno.makeTempDir({ prefix: "odmr-customer-refused-" });
  const p = await startScriptedProvider({ user: USER, password: PASSWORD, messages });
  try {
    await Deno.writeTextFile(`${dir}/password`, PASSWORD + "\n", { mode: 0o600 });
    const config = {
      hostname: "pi.test",
      "data_dir": `${dir}/data`,
      log: { format: "json", level: "info" },
      fetch: {
        server: `127.0.0.1:${p.port}`,
        tls: "none",
        user: USER,
        "password_file": `${dir}/password`,
        domains: ["example.org"],
        "deliver_to": `maildir:${dir}/Maildir`,
      },
    };
    await Deno.writeTextFile(`${dir}/fetch.yaml`, YAML.stringify(config));
    const result = await runMain(["fetch", "--once", "--config", `${dir}/fetch.yaml`]);
    const lines = (result.stdout + result.stderr).split("\n").filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as LogLine);
    const finals = (p.sessions[0]?.results ?? []).map((r) => r.final?.code ?? 0);
    return { finals, lines };
  } finally {
    await p.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const long = (n: number) => "x".repeat(n - 2) + "\r\n";

Deno.test("fetch logs and counts a message its own receiver refused", async () => {
  const { finals, lines } = await fetchLogs([
    {
      from: "long@sender.test",
      rcpts: ["u@example.org", "v@example.org"],
      body: enc.encode(`Subject: a\r\n\r\n${long(1001)}`),
    },
    {
      from: "bare@sender.test",
      rcpts: ["u@example.org"],
      body: enc.encode("Subject: b\r\n\r\nx\ny\r\n"),
      bdatChunkBytes: 7,
    },
    {
      from: "ok@sender.test",
      rcpts: ["u@example.org"],
      body: enc.encode("Subject: c\r\n\r\nok\r\n"),
    },
  ]);
  assertEquals(finals.map((c) => Math.floor(c / 100)), [5, 5, 2]);
  const refused = lines.filter((l) => l.event === "refused");
  assertEquals(
    refused.map((l) => [l.level, l.from, l.to, l.reason]),
    [
      ["warn", "long@sender.test", ["u@example.org", "v@example.org"], "content"],
      ["warn", "bare@sender.test", ["u@example.org"], "content"],
    ],
    JSON.stringify(lines),
  );
  const done = lines.find((l) => l.event === "fetch_done");
  assert(done !== undefined, JSON.stringify(lines));
  assertEquals([done.messages, done.delivered, done.failed], [3, 1, 3]);
});
