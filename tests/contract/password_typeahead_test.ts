/**
 * `user add` on a terminal asks for the password twice without echo (CONTRACT "user add …
 * otherwise prompted (no echo) on a TTY"). Both lines typed ahead (pasted, or sent by `expect`
 * before the prompt shows) are the two answers: the second prompt used to lose what the first
 * read had already taken past its line, and the user got "Passwords do not match" (exit 2).
 * The real process on a pseudo-terminal (`script`), both lines written before it starts.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { REPO_ROOT, runMain } from "../_helpers/server_process.ts";
import { skipUnless } from "../_helpers/tools.ts";

const NAME = "user add takes both password lines typed ahead on a terminal";

Deno.test({ name: NAME, ignore: await skipUnless(NAME, "script") }, async () => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-typeahead-" });
  try {
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(config, "data_dir: ./data\n");
    const add = [Deno.execPath(), "run", "-A", `${REPO_ROOT}main.ts`, "user", "add", "alice"];
    const child = new Deno.Command("script", {
      args: [
        "-qec",
        [...add, "--domain", "example.org", "--config", config].join(" "),
        "/dev/null",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("typed-ahead\ntyped-ahead\n"));
    await writer.close();
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout);
    assertEquals({ code: out.code, mismatch: text.includes("do not match") }, {
      code: 0,
      mismatch: false,
    }, text);
    const check = await runMain(["user", "test", "alice", "--password-stdin", "--config", config], {
      stdin: "typed-ahead\n",
    });
    assertEquals(check.code, 0, check.stdout + check.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
