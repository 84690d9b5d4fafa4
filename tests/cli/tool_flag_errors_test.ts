/**
 * A flag the tool commands (`user`, `queue`, `dkim`) do not know, or one without its value, is
 * one short `error:` line naming the flag and pointing to `COMMAND --help`, exit 2 (CONTRACT:
 * usage error), as for serve and fetch; not node:util's parseArgs text ("To specify a
 * positional argument starting with a '-', place it at the end…") and a usage paragraph.
 * The real process, in a directory of its own (embedded defaults: data_dir ./data).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { runMain } from "../_helpers/server_process.ts";

const CASES: { args: string[]; line: string }[] = [
  {
    args: ["queue", "list", "--bogus"],
    line: `Unknown option "--bogus": run "odmr-relay queue --help"`,
  },
  {
    args: ["queue", "show", "--bogus", "x"],
    line: `Unknown option "--bogus": run "odmr-relay queue --help"`,
  },
  {
    args: ["queue", "list", "--domain"],
    line: `Missing value for "--domain": run "odmr-relay queue --help"`,
  },
  {
    args: ["queue", "migrate", "--bogus"],
    line: `Unknown option "--bogus": run "odmr-relay queue --help"`,
  },
  { args: ["user", "list", "-x"], line: `Unknown option "-x": run "odmr-relay user --help"` },
  {
    args: ["user", "add", "bob", "--domain"],
    line: `Missing value for "--domain": run "odmr-relay user --help"`,
  },
  {
    args: ["user", "certs", "bob", "--bogus"],
    line: `Unknown option "--bogus": run "odmr-relay user --help"`,
  },
  {
    args: ["dkim", "list", "--json=yes"],
    line: `"--json" takes no value: run "odmr-relay dkim --help"`,
  },
];

Deno.test("an unknown or incomplete flag of user, queue or dkim is one short error line, exit 2", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-toolflags-" });
  try {
    for (const { args, line } of CASES) {
      await t.step(args.join(" "), async () => {
        const r = await runMain(args, { cwd: dir });
        assertEquals({ code: r.code, stderr: r.stderr }, {
          code: 2,
          stderr: `error: ${line} for usage\n`,
        });
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
