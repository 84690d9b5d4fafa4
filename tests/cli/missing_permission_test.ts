/**
 * A Deno permission left out of the documented ones (README "Permissions") is reported as one
 * `error:` line that names the flag, not as an uncaught exception with a stack trace: exit 1 (a
 * runtime failure, as a data_dir that cannot be written), but exit 2 for `check-config`, which
 * CONTRACT and README give "0 or 2" (a config that cannot be checked as granted is not valid). The command line is `deno task
 * start`'s (deno.json, read at test time) without one of its grants, in an empty directory.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { REPO_ROOT, runMain } from "../_helpers/server_process.ts";

async function startFlags(): Promise<string[]> {
  const tasks = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)).tasks;
  const words = String(tasks.start).split(/\s+/);
  assertEquals(words.slice(0, 2), ["deno", "run"]);
  assertEquals(words.slice(-2), ["main.ts", "serve"]);
  return words.slice(2, -2);
}

function run(flags: string[], args: string[], cwd: string) {
  return runMain(args, { denoFlags: ["-q", ...flags], cwd });
}

Deno.test("a missing --allow-env or --allow-sys is one error line naming the flag, exit 1 (check-config: 2)", async (t) => {
  const flags = await startFlags();
  const dir = await Deno.makeTempDir({ prefix: "odmr-perm-missing-" });
  try {
    const full = await run(flags, ["check-config"], dir);
    assertEquals(full.code, 0, full.stderr);
    for (const grant of ["--allow-env", "--allow-sys"]) {
      await t.step(`without ${grant}`, async () => {
        const fewer = flags.filter((f) => !f.startsWith(grant));
        assertEquals(fewer.length, flags.length - 1);
        for (const [args, want] of [[["check-config"], 2], [["user", "list"], 1]] as const) {
          const { code, stderr } = await run(fewer, [...args], dir);
          assertEquals(code, want, `${args.join(" ")}: ${stderr}`);
          assert(!/Uncaught|\n\s+at /.test(stderr), `a stack trace: ${stderr}`);
          match(stderr, new RegExp(`^error: .*${grant}\\b.*\\n$`));
        }
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
