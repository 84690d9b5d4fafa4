/**
 * A `serve` that is expected to refuse to start (another serve holds its data_dir): run as a
 * one-shot process, killed after a deadline so that a serve wrongly let in fails the test
 * instead of hanging it, and its refusal checked.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type CliResult, REPO_ROOT } from "./server_process.ts";

/** A serve that was wrongly let in would run until killed: the test fails instead of hanging. */
const REFUSAL_DEADLINE_MS = 20_000;

/** `serve --config configPath` as a one-shot process, killed after the deadline. */
export async function serveOnce(
  configPath: string,
  opts: { flags?: readonly string[]; cwd?: string } = {},
): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(opts.flags ?? ["-A"]),
      `${REPO_ROOT}main.ts`,
      "serve",
      "--config",
      configPath,
    ],
    cwd: opts.cwd ?? REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(REFUSAL_DEADLINE_MS),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Asserts the refusal of a second serve on `dataDir` held by `holderPid`: exit 1, one line. */
export function assertRefused(r: CliResult, dataDir: string, holderPid: number): void {
  const out = (r.stdout + r.stderr).trim();
  assertEquals(r.code, 1, out);
  assertEquals(out.split("\n").length, 1, `one line: ${out}`);
  assert(
    out.includes(`startup_failed reason="another serve (pid ${holderPid}) holds data_dir`),
    out,
  );
  assert(out.includes(`data_dir \\"${dataDir}\\"`), `names the data_dir: ${out}`);
  assert(!/event=listening/.test(out), `binds no port: ${out}`);
}
