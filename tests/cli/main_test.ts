import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { runCli, takeConfigFlag } from "../../src/cli/main.ts";
import type { CliEnvironment } from "../../src/cli/main.ts";
import { VERSION } from "../../src/version.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

/** Runs the CLI in-process with captured output. */
async function run(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const environment: CliEnvironment = {
    env: opts.env ?? {},
    cwd: opts.cwd ?? Deno.cwd(),
    stdout: (t) => stdout += t,
    stderr: (t) => stderr += t,
  };
  const code = await runCli(args, environment);
  return { code, stdout, stderr };
}

Deno.test("runCli() --version prints the name and version and exits 0", async () => {
  const r = await run(["--version"]);
  assertEquals(r, { code: 0, stdout: `odmr-relay ${VERSION}\n`, stderr: "" });
});

Deno.test("runCli() --help lists every command of the contract", async () => {
  const r = await run(["--help"]);
  assertEquals(r.code, 0);
  for (const command of ["serve", "fetch", "user", "queue", "check-config"]) {
    assert(r.stdout.includes(`  ${command} `), `help lists ${command}`);
  }
});

Deno.test("runCli() without a command prints help to stderr and exits 2", async () => {
  const r = await run([]);
  assertEquals(r.code, 2);
  assert(r.stderr.includes("Usage: odmr-relay COMMAND"));
});

Deno.test("runCli() COMMAND --help prints that command's usage without loading a config", async () => {
  for (const command of ["serve", "fetch", "user", "queue", "check-config"]) {
    const r = await run([command, "--help", "--config", "/nonexistent.yaml"]);
    assertEquals(r.code, 0);
    assert(r.stdout.startsWith(`Usage: odmr-relay ${command}`), r.stdout);
  }
});

Deno.test("runCli() rejects an unknown command with exit 2", async () => {
  const r = await run(["srve"]);
  assertEquals(r.code, 2);
  assertEquals(
    r.stderr,
    `error: Unknown command "srve": run "odmr-relay --help" for the list of commands\n`,
  );
});

Deno.test("runCli() check-config prints the effective settings and exits 0", async () => {
  await withTempDataDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/c.yaml`,
      "hostname: mx.example.net\nsmtp: {max_message_size: 10MB, timeout: 90s}\n",
    );
    const r = await run(["check-config", "--config", "c.yaml"], { cwd: dir });
    assertEquals(r.code, 0, r.stderr);
    assert(r.stdout.includes(`# source: ${dir}/c.yaml`));
    assert(r.stdout.includes("hostname: mx.example.net"));
    assert(r.stdout.includes(`data_dir: ${dir}/data`));
    assert(r.stdout.includes("max_message_size: 10MB"));
    assert(r.stdout.includes("timeout: 90s"));
    assert(r.stdout.includes("- 127.0.0.1:2525"));
  });
});

Deno.test("runCli() check-config output is itself a valid config", async () => {
  await withTempDataDir(async (dir) => {
    const example = await Deno.readTextFile(new URL("../../config.example.yaml", import.meta.url));
    await Deno.writeTextFile(`${dir}/a.yaml`, example);
    const first = await run(["check-config", "--config", "a.yaml"], { cwd: dir });
    // The example names files under /etc that do not exist here.
    assertEquals(first.code, 2);
    match(first.stderr, /tls\.cert names a file that does not exist/);

    await Deno.writeTextFile(
      `${dir}/b.yaml`,
      "odmr: {listen: [], require_tls: true, auth_timeout: 45s}\nqueue: {max_age: 2h, quota: {messages: 10}}\n" +
        "domains: {Example.org: {max_age: 1d}, b.example: {quota: {bytes: 5MB}}}\n",
    );
    const once = await run(["check-config", "--config", "b.yaml"], { cwd: dir });
    await Deno.writeTextFile(`${dir}/c.yaml`, once.stdout);
    const twice = await run(["check-config", "--config", "c.yaml"], { cwd: dir });
    assertEquals(twice.code, 0, twice.stderr);
    // Retention and quotas are part of the effective settings, per domain with defaults applied.
    match(once.stdout, /example\.org:\n {4}max_age: 1d\n {4}quota:\n {6}messages: 10\n/);
    match(once.stdout, /\n {2}auth_timeout: 45s\n/);
    match(once.stdout, /b\.example:\n {4}max_age: 2h\n {4}quota:\n {6}bytes: 5MB\n/);
    assertEquals(
      twice.stdout.split("\n").slice(1),
      once.stdout.replace(`${dir}/b.yaml`, `${dir}/c.yaml`).split("\n").slice(1),
    );
  });
});

Deno.test("runCli() honours ODMR_RELAY_CONFIG and --config wins over it", async () => {
  await withTempDataDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/env.yaml`, "hostname: env.example\n");
    await Deno.writeTextFile(`${dir}/flag.yaml`, "hostname: flag.example\n");
    const env = { ODMR_RELAY_CONFIG: `${dir}/env.yaml` };
    const fromEnv = await run(["check-config"], { cwd: dir, env });
    assert(fromEnv.stdout.includes("hostname: env.example"));
    const fromFlag = await run(["check-config", "--config=flag.yaml"], { cwd: dir, env });
    assert(fromFlag.stdout.includes("hostname: flag.example"));
  });
});

Deno.test("runCli() config errors exit 2 naming the file and key path", async () => {
  await withTempDataDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/bad.yaml`, "smtp:\n  max_recipent: 5\n");
    const r = await run(["check-config", "--config", "bad.yaml"], { cwd: dir });
    assertEquals(r.code, 2);
    assertEquals(
      r.stderr,
      `error: Cannot load config "${dir}/bad.yaml": smtp.max_recipent is not a known key: did you mean "smtp.max_recipients"?\n`,
    );
    const missing = await run(["serve", "--config", "gone.yaml"], { cwd: dir });
    assertEquals(missing.code, 2);
    assertEquals(missing.stderr, `error: Cannot load config "${dir}/gone.yaml": file not found\n`);
  });
});

Deno.test("runCli() usage errors exit 2 naming the flag", async () => {
  await withTempDataDir(async (dir) => {
    const noValue = await run(["check-config", "--config"], { cwd: dir });
    assertEquals(noValue.code, 2);
    assertEquals(noValue.stderr, `error: Missing value for "--config": expected a file name\n`);
    const extra = await run(["check-config", "extra"], { cwd: dir });
    assertEquals(extra.code, 2);
    match(extra.stderr, /Unexpected argument "extra"/);
    const badFlag = await run(["fetch", "--onse"], { cwd: dir });
    assertEquals(badFlag.code, 2);
    match(badFlag.stderr, /--onse/);
  });
});

Deno.test("runCli() fetch without a fetch section is a config error (exit 2)", async () => {
  await withTempDataDir(async (dir) => {
    const r = await run(["fetch", "--once"], { cwd: dir });
    assertEquals(r.code, 2);
    match(r.stderr, /no fetch section/);
  });
});

Deno.test("takeConfigFlag() removes --config in both spellings and keeps the rest", () => {
  assertEquals(takeConfigFlag(["add", "bob", "--config", "f.yaml", "--domain", "d"]), {
    ok: true,
    configPath: "f.yaml",
    rest: ["add", "bob", "--domain", "d"],
  });
  assertEquals(takeConfigFlag(["--config=f.yaml", "list"]), {
    ok: true,
    configPath: "f.yaml",
    rest: ["list"],
  });
  assertEquals(takeConfigFlag(["list"]), { ok: true, configPath: undefined, rest: ["list"] });
  assertEquals(takeConfigFlag(["--config", "a", "--config", "b"]), {
    ok: false,
    message: `"--config" given twice`,
  });
});
