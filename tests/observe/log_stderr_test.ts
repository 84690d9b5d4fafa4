/**
 * The default log sink writes each line to stderr as UTF-8 with its newline, byte-exact: ASCII
 * lines (copied into a reused buffer, #13), lines with other characters, a line longer than
 * that buffer, and a short line after a long one (nothing of the earlier line left over).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";

const LOG_MODULE = new URL("../../src/observe/log.ts", import.meta.url).href;

Deno.test("log lines reach stderr byte-exact, ASCII or not, short or long (#13)", async () => {
  const long = "x".repeat(3000);
  const script = `
    import { createLogger } from ${JSON.stringify(LOG_MODULE)};
    const log = createLogger({ level: "info", format: "text", now: () => new Date(0) });
    log.info("queued", { helo: "ascii.example", size: 4096 });
    log.info("queued", { helo: "bücher.example" });
    log.info("long", { value: ${JSON.stringify(long)} });
    log.info("short");
    const json = createLogger({ level: "info", format: "json", now: () => new Date(0) });
    json.info("queued", { to: ["a@例え.jp", "b@example.org"] });
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdout: "null",
    stderr: "piped",
  }).output();
  const t = "1970-01-01T00:00:00.000Z";
  const expected = [
    `${t} info event=queued helo=ascii.example size=4096`,
    `${t} info event=queued helo="bücher.example"`,
    `${t} info event=long value=${long}`,
    `${t} info event=short`,
    JSON.stringify({ time: t, level: "info", event: "queued", to: ["a@例え.jp", "b@example.org"] }),
  ].map((l) => l + "\n").join("");
  assertEquals(new TextDecoder().decode(out.stderr), expected);
  assertEquals(out.stderr, new TextEncoder().encode(expected));
});
