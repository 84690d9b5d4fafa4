/**
 * Output read by a pipe that is already closed (`odmr-relay … | head -1` once head has what it
 * wants): the command ends as it would have, without a stack trace or an error about the queue,
 * like `queue list` and `queue show --body` always did (exit 0, the reader has what it wanted).
 * `--help`, `--version` and `check-config` died with "Uncaught BrokenPipe" and a trace (exit 1);
 * `user list` and `dkim list` said `Cannot use the users in "…": Broken pipe` (exit 1). The real
 * process, its stdout a pipe whose reading end python3 closed before starting it (so no timing
 * decides whether the write fails).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { REPO_ROOT } from "../_helpers/server_process.ts";
import { skipUnless } from "../_helpers/tools.ts";

const CLOSED_PIPE = `
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
sys.stderr.buffer.write(p.stderr)
sys.exit(p.returncode)
`;

const CASES: string[][] = [
  ["--help"],
  ["--version"],
  ["help", "queue"],
  ["user", "--help"],
  ["check-config"],
  ["user", "list"],
  ["user", "list", "--json"],
  ["dkim", "list", "--json"],
  ["queue", "list", "--json"],
  ["queue", "summary", "--json"],
];

const NAME = "a command whose stdout pipe is closed ends quietly with its exit code";

Deno.test({ name: NAME, ignore: await skipUnless(NAME, "python3") }, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-closed-stdout-" });
  try {
    for (const args of CASES) {
      await t.step(args.join(" "), async () => {
        const out = await new Deno.Command("python3", {
          args: ["-c", CLOSED_PIPE, Deno.execPath(), "run", "-A", `${REPO_ROOT}main.ts`, ...args],
          cwd: dir,
          stdout: "null",
          stderr: "piped",
          env: { NO_COLOR: "1" },
        }).output();
        assertEquals({ code: out.code, stderr: new TextDecoder().decode(out.stderr) }, {
          code: 0,
          stderr: "",
        });
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
