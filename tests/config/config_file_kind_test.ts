/**
 * The config file itself must be a regular file of a sane size, as every file it names already is
 * (`is not a file`): a `--config` naming a FIFO waited for a writer for ever, and `/dev/zero` was
 * read into memory without end. Refused with one `error:` line naming the file, exit 2 (CONTRACT
 * "Exit codes"). A file over 1 MiB (config.example.yaml is about 10 KB) is refused before it is
 * read.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { runMain } from "../_helpers/server_process.ts";

/** check-config on `path`; a run that hangs is stopped after 20 s (then not 2). */
async function checkConfig(path: string) {
  const stop = AbortSignal.timeout(20_000);
  return await runMain(["check-config", "--config", path], { signal: stop });
}

Deno.test("config: --config naming a FIFO, a device or a huge file is refused, exit 2", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-config-kind-" });
  try {
    const fifo = `${dir}/config.fifo`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assertEquals(made.success, true);
    for (const path of [fifo, "/dev/zero"]) {
      await t.step(path.replace(dir, "DIR"), async () => {
        const r = await checkConfig(path);
        assertEquals(r.code, 2, r.stderr);
        match(r.stderr, /^error: Cannot load config ".*": is not a regular file\n$/);
      });
    }
    await t.step("over 1 MiB", async () => {
      const big = `${dir}/big.yaml`;
      await Deno.writeTextFile(big, `# ${"x".repeat(1024 * 1024)}\nhostname: a.test\n`);
      const r = await checkConfig(big);
      assertEquals(r.code, 2, r.stderr);
      match(r.stderr, /^error: Cannot load config ".*big\.yaml": is larger than 1 MiB\n$/);
    });
    await t.step("a plain file still loads", async () => {
      const ok = `${dir}/ok.yaml`;
      await Deno.writeTextFile(ok, `data_dir: ${dir}/data\n`);
      const r = await checkConfig(ok);
      assertEquals(r.code, 0, r.stderr);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
