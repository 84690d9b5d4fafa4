/**
 * Issue 13 (idle memory): `deno task start`, `deno task dev` and the README's `deno run` of
 * serve run without Deno's V8 code cache (a SQLite file it would map into the process).
 */
import { ok } from "node:assert/strict";
import { REPO_ROOT } from "../_helpers/server_process.ts";

Deno.test("(#13) deno task start and dev and the README's serve command pass --no-code-cache", async () => {
  const deno = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)) as {
    tasks: Record<string, string>;
  };
  for (const task of ["start", "dev"]) {
    const cmd = deno.tasks[task] ?? "";
    ok(/^deno run .*--no-code-cache .*main\.ts serve$/.test(cmd), `${task}: ${cmd}`);
  }
  const readme = await Deno.readTextFile(`${REPO_ROOT}README.md`);
  // The command from its first line (`deno run --v8-flags=…`) to `main.ts serve`.
  const serve = readme.match(/^deno run --v8-flags=[^`]*?main\.ts serve\b/m)?.[0] ?? "";
  ok(serve.includes("--no-code-cache"), serve);
});
