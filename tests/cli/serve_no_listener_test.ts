/**
 * `serve` with no SMTP, ODMR or submission listener (`smtp.listen: []`, `odmr.listen: []`) has
 * nothing to serve: it is refused before it starts, exit 2 (a configuration error, CONTRACT),
 * with one line naming the keys. The real process: it either exits or logs `event=ready`.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { REPO_ROOT } from "../_helpers/server_process.ts";
import { spawn, stop } from "../_helpers/spawned.ts";

async function serveOutcome(config: string): Promise<{ code: number | "ready"; output: string }> {
  const dir = await Deno.makeTempDir({ prefix: "odmr-nolisten-" });
  try {
    await Deno.writeTextFile(`${dir}/config.yaml`, `data_dir: ./data\n${config}`);
    const p = spawn("serve", Deno.execPath(), [
      "run",
      "-A",
      `${REPO_ROOT}main.ts`,
      "serve",
      "--config",
      `${dir}/config.yaml`,
    ], { env: { NO_COLOR: "1" } });
    const ready = p.waitForLine(/event=ready\b/, 30_000).then(() => "ready" as const, () => null);
    const outcome = await Promise.race([p.exited, ready]);
    if (outcome === "ready") await stop(p);
    else await p.exited;
    return { code: outcome ?? "ready", output: p.tail.join("\n") };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("serve with smtp.listen and odmr.listen empty and no submission is refused, exit 2", async () => {
  const { code, output } = await serveOutcome("smtp:\n  listen: []\nodmr:\n  listen: []\n");
  assertEquals(code, 2, output);
  match(output, /^error: .*smtp\.listen.*odmr\.listen/m);
  assert(!/\n\s+at /.test(output), output);
});

Deno.test("serve with only a submission listener still starts", async () => {
  const { code, output } = await serveOutcome(
    'smtp:\n  listen: []\nodmr:\n  listen: []\nsubmission:\n  listen: ["127.0.0.1:0"]\n',
  );
  assertEquals(code, "ready", output);
});
