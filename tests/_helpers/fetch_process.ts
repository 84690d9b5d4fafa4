/**
 * The customer side of e2e tests: `writeFetchConfig` writes a `fetch` config for alice (and her
 * password file, alice-pw unless one exists) into `dir`; `runFetchOnce` runs `fetch --once`
 * on such a config as a real process and returns its exit code and output; `fetchFromScript`
 * runs it against a scripted provider into a Maildir.
 */
import YAML from "yaml";
import {
  type MessageResult,
  type ScriptMessage,
  startScriptedProvider,
} from "./scripted_provider.ts";
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

/** What `fetchFromScript` saw. */
export interface ScriptedFetch {
  /** The provider's record of each message it offered: the customer's replies. */
  readonly results: readonly MessageResult[];
  /** fetch's stdout and stderr. */
  readonly output: string;
  /** Files fetch delivered into the Maildir (new/). */
  readonly filed: number;
}

/**
 * Runs `fetch --once` as alice (alice-pw, domain example.org, JSON log at info) against a
 * scripted provider that offers `messages` after ATRN, delivering into a Maildir; removes it all
 * afterwards.
 */
export async function fetchFromScript(messages: ScriptMessage[]): Promise<ScriptedFetch> {
  const dir = await Deno.makeTempDir({ prefix: "odmr-fetch-script-" });
  const p = await startScriptedProvider({ user: "alice", password: "alice-pw", messages });
  try {
    const path = await writeFetchConfig(dir, {
      server: `127.0.0.1:${p.port}`,
      domains: ["example.org"],
      "deliver_to": `maildir:${dir}/Maildir`,
    }, { hostname: "pi.test", "data_dir": `${dir}/data`, log: { format: "json", level: "info" } });
    const result = await runMain(["fetch", "--once", "--config", path]);
    let filed = 0;
    try {
      for await (const _ of Deno.readDir(`${dir}/Maildir/new`)) filed++;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    return {
      results: p.sessions[0]?.results ?? [],
      output: result.stdout + result.stderr,
      filed,
    };
  } finally {
    await p.close();
    await Deno.remove(dir, { recursive: true });
  }
}
