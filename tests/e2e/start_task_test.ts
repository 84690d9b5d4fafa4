/**
 * E2E: `serve` runs under exactly the permissions of `deno task start` (deno.json), from a
 * working directory holding only `./config.yaml`, and creates `./data` there. Proves the
 * README's least-permission claims instead of repeating them, the data_dir lock included.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type CliResult, parseListening, REPO_ROOT } from "../_helpers/server_process.ts";
import { assertRefused, serveOnce } from "../_helpers/serve_once.ts";

Deno.test("serve runs with the least permissions of `deno task start`", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)).tasks;
  const words = String(tasks.start).split(/\s+/);
  assertEquals(words.slice(0, 2), ["deno", "run"]);
  const flags = words.filter((w) => w.startsWith("--allow-"));
  assert(!flags.includes("--allow-all") && !words.includes("-A"), "no blanket permission");

  const dir = await Deno.makeTempDir({ prefix: "odmr-start-" });
  try {
    await Deno.writeTextFile(
      `${dir}/config.yaml`,
      `smtp: {listen: ["127.0.0.1:0"]}\nodmr: {listen: ["127.0.0.1:0"]}\n`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, `${REPO_ROOT}main.ts`, "serve"],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    let logs = "";
    let second: CliResult | undefined;
    const decoder = new TextDecoder();
    const reader = child.stderr.getReader();
    const deadline = Date.now() + 30_000;
    try {
      while (!logs.includes("event=ready") && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        logs += decoder.decode(value, { stream: true });
      }
      // A second serve on the same ./data, under the same permissions, is refused: the
      // lock needs no more than the task grants.
      if (logs.includes("event=ready")) {
        second = await serveOnce(`${dir}/config.yaml`, { flags, cwd: dir });
      }
    } finally {
      child.kill("SIGTERM");
    }
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      logs += decoder.decode(value, { stream: true });
    }
    const status = await child.status;
    await child.stdout.cancel();
    assert(logs.includes("event=ready"), logs);
    assertEquals(parseListening(logs).map((l) => l.proto), ["smtp", "odmr"]);
    assertEquals(status.code, 0, logs);
    assert((await Deno.stat(`${dir}/data/odmr.db`)).isFile, "the queue is in ./data");
    assert(second !== undefined, logs);
    assertRefused(second, `${dir}/data`, child.pid);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
