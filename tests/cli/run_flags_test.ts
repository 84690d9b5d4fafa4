/**
 * Issue 13: `deno task start`, `deno task dev`, the README's `deno run` of serve and the compiled
 * binaries run without Deno's V8 code cache (idle memory: a SQLite file mapped into the
 * process, or the binary's own cache file). The README's `deno run` of fetch keeps the cache
 * (start-up: `fetch --once` reaches its ATRN sooner) and has serve's V8 flags.
 */
import { equal, ok } from "node:assert/strict";
import { REPO_ROOT } from "../_helpers/server_process.ts";

async function tasks(): Promise<Record<string, string>> {
  return (JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)) as {
    tasks: Record<string, string>;
  }).tasks;
}

/** The README's `deno run` command of `command`, continuation lines joined. */
async function readmeRun(command: "serve" | "fetch"): Promise<string> {
  const readme = (await Deno.readTextFile(`${REPO_ROOT}README.md`)).replaceAll("\\\n", " ");
  return readme.match(new RegExp(`^deno run [^\`\\n]*?main\\.ts ${command}\\b`, "m"))?.[0] ?? "";
}

function v8Flags(cmd: string): string | undefined {
  return cmd.split(/\s+/).find((w) => w.startsWith("--v8-flags="));
}

Deno.test("(#13) deno task start and dev and the README's serve command pass --no-code-cache", async () => {
  const all = await tasks();
  for (const task of ["start", "dev"]) {
    const cmd = all[task] ?? "";
    ok(/^deno run .*--no-code-cache .*main\.ts serve$/.test(cmd), `${task}: ${cmd}`);
  }
  const serve = await readmeRun("serve");
  ok(serve.includes("--no-code-cache"), serve);
});

Deno.test("(#13) the compiled binaries are built with --no-code-cache and start's V8 flags", async () => {
  const all = await tasks();
  for (const task of ["compile", "compile:arm64"]) {
    const cmd = all[task] ?? "";
    ok(/^deno compile .*--no-code-cache .*main\.ts$/.test(cmd), `${task}: ${cmd}`);
    equal(v8Flags(cmd), v8Flags(all.start ?? ""), task);
  }
});

Deno.test("(#13) the README's fetch command has serve's V8 flags and keeps the code cache", async () => {
  const fetch = await readmeRun("fetch");
  ok(fetch !== "", "the README shows fetch under deno run");
  equal(v8Flags(fetch), v8Flags(await readmeRun("serve")), fetch);
  ok(!fetch.includes("--no-code-cache"), fetch);
});
