/**
 * `fetch --once` as a real process for e2e tests: writes the password file (alice-pw unless
 * one exists) and a config next to `dir`, runs the command and returns its exit code and
 * output.
 */
import YAML from "yaml";
import { type CliResult, runMain } from "./server_process.ts";

/** Runs `fetch --once` as alice (domains example.org and example.com unless `fetch` says). */
export async function runFetchOnce(
  dir: string,
  fetch: Record<string, unknown>,
): Promise<CliResult> {
  const pw = `${dir}/password`;
  try {
    await Deno.stat(pw);
  } catch {
    await Deno.writeTextFile(pw, "alice-pw\n", { mode: 0o600 });
  }
  const config = {
    hostname: "pi.test",
    "data_dir": `${dir}/data`,
    fetch: {
      tls: "none",
      user: "alice",
      "password_file": pw,
      domains: ["example.org", "example.com"],
      ...fetch,
    },
  };
  const path = `${dir}/fetch.yaml`;
  await Deno.writeTextFile(path, YAML.stringify(config));
  return runMain(["fetch", "--once", "--config", path]);
}
