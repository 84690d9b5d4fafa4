/**
 * `fetch` logs a message its own receiver refused (a line over 1000 octets, a bare CR or LF,
 * a body over its size limit) as it logs one the local side refused: one `refused` line with the
 * sender, the recipients and the reason, and a `failed` count in `fetch_done` (the provider
 * bounces it). It logged nothing and counted nothing: the message was bounced at the provider
 * while the customer's log said every message was fine. The real `fetch --once` process against
 * a scripted provider, into a Maildir.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { fetchFromScript } from "../_helpers/fetch_process.ts";
import type { ScriptMessage } from "../_helpers/scripted_provider.ts";

const enc = new TextEncoder();

type LogLine = Record<string, unknown>;

/** Runs one `fetch --once` into a Maildir: the customer's final replies and its JSON log lines. */
async function fetchLogs(
  messages: ScriptMessage[],
): Promise<{ finals: number[]; lines: LogLine[] }> {
  const { results, output } = await fetchFromScript(messages);
  const lines = output.split("\n").filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as LogLine);
  return { finals: results.map((r) => r.final?.code ?? 0), lines };
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
