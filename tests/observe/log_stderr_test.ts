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

/** Runs `script` (TypeScript) in a fresh process; returns what it wrote to stderr. */
async function stderrOf(script: string): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdout: "null",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stderr);
}

const LOGGER = `
  import { createLogger } from ${JSON.stringify(LOG_MODULE)};
  const log = createLogger({ level: "debug", format: "text", now: () => new Date(0) });
  const mark = (s: string) => Deno.stderr.writeSync(new TextEncoder().encode(s + "\\n"));
`;
const T = "1970-01-01T00:00:00.000Z";

Deno.test("info lines wait to share a write: a direct write of the same turn comes first (#13)", async () => {
  const err = await stderrOf(`${LOGGER}
    log.info("one"); log.debug("two");
    mark("direct");
  `);
  // The lines waited (and the process ended with them still waiting: \`unload\` wrote them).
  assertEquals(err, `direct\n${T} info event=one\n${T} debug event=two\n`);
});

Deno.test("an info line reaches stderr while the process runs on (#13)", async () => {
  // The child logs once, then waits for its stdin to end: only the wait's timer writes the line.
  // Should it never come, the child kills itself after 30 s (SIGKILL: no exit hook writes it).
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--ext=ts",
      `${LOGGER}
      log.info("while_running");
      setTimeout(() => Deno.kill(Deno.pid, "SIGKILL"), 30_000);
      for await (const _ of Deno.stdin.readable) { /* until the test closes it */ }
      Deno.exit(0);
    `,
    ],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.getReader();
  let text = "";
  try {
    while (!text.includes("\n")) {
      const r = await reader.read();
      if (r.done) break;
      text += new TextDecoder().decode(r.value);
    }
  } finally {
    await child.stdin.close();
    reader.releaseLock();
    await child.stderr.cancel();
    await child.status;
  }
  assertEquals(text, `${T} info event=while_running\n`);
});

Deno.test("a warning or error is written at once, behind the info lines waiting (#13)", async () => {
  const err = await stderrOf(`${LOGGER}
    log.info("before"); log.warn("w"); mark("after-warn");
    log.info("again"); log.error("e"); mark("after-error");
  `);
  assertEquals(
    err,
    `${T} info event=before\n${T} warn event=w\nafter-warn\n` +
      `${T} info event=again\n${T} error event=e\nafter-error\n`,
  );
});

Deno.test("info lines still waiting are written when the process exits (#13)", async () => {
  const err = await stderrOf(`${LOGGER}
    log.info("last");
    Deno.exit(0);
  `);
  assertEquals(err, `${T} info event=last\n`);
});

for (
  const [how, crash] of <[string, string][]> [
    ["an uncaught error", `throw new Error("boom");`],
    ["an unhandled rejection", `Promise.reject(new Error("boom"));`],
    [
      "an error thrown in a timer",
      `setTimeout(() => { log.info("in_timer"); throw new Error("boom"); }, 5);`,
    ],
  ]
) {
  Deno.test(`info lines logged right before ${how} reach stderr, before Deno's report (#13)`, async () => {
    const err = await stderrOf(`${LOGGER}
      log.info("before_crash");
      ${crash}
    `);
    const report = err.indexOf("Uncaught");
    const line = `${T} info event=before_crash\n`;
    assertEquals(report > 0, true, err);
    assertEquals(
      err.startsWith(how.includes("timer") ? line + `${T} info event=in_timer\n` : line),
      true,
      err,
    );
  });
}

Deno.test("more info lines in one turn than the buffer holds all arrive, in order (#13)", async () => {
  const err = await stderrOf(`${LOGGER}
    for (let i = 0; i < 2000; i++) log.info("n", { i, pad: "p".repeat(60) });
    log.info("huge", { v: "h".repeat(70000) });
    log.info("bücher");
    log.info("end");
  `);
  const lines = err.split("\n");
  assertEquals(lines.length, 2004);
  for (let i = 0; i < 2000; i++) {
    assertEquals(lines[i], `${T} info event=n i=${i} pad=${"p".repeat(60)}`);
  }
  assertEquals(lines[2000], `${T} info event=huge v=${"h".repeat(70000)}`);
  assertEquals(lines.slice(2001), [`${T} info event="bücher"`, `${T} info event=end`, ""]);
});
