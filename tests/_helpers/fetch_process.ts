/**
 * The customer side of e2e tests: `writeFetchConfig` writes a `fetch` config for alice (and her
 * password file, alice-pw unless one exists) into `dir`; `runFetchOnce` runs `fetch --once`
 * on such a config as a real process and returns its exit code and output.
 */
import YAML from "yaml";
import { type CliResult, runMain } from "./server_process.ts";

/**
 * Writes `dir`/fetch.yaml: the `fetch` section logs in as alice with `dir`/password, without
 * TLS, unless `fetch` says otherwise; `sections` stand beside it (hostname, data_dir, log,
 * metrics…). Returns the path.
 */
export async function writeFetchConfig(
  dir: string,
  fetch: Record<string, unknown>,
  sections: Record<string, unknown> = {},
): Promise<string> {
  const pw = `${dir}/password`;
  try {
    await Deno.stat(pw);
  } catch {
    await Deno.writeTextFile(pw, "alice-pw\n", { mode: 0o600 });
  }
  const config = {
    ...sections,
    fetch: { tls: "none", user: "alice", "password_file": pw, ...fetch },
  };
  const path = `${dir}/fetch.yaml`;
  await Deno.writeTextFile(path, YAML.stringify(config));
  return path;
}

/** Runs `fetch --once` as alice (domains example.org and example.com unless `fetch` says). */
export async function runFetchOnce(
  dir: string,
  fetch: Record<string, unknown>,
): Promise<CliResult> {
  const path = await writeFetchConfig(
    dir,
    { domains: ["example.org", "example.com"], ...fetch },
    { hostname: "pi.test", "data_dir": `${dir}/data` },
  );
  return runMain(["fetch", "--once", "--config", path]);
}
