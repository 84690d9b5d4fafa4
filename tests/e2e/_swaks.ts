/** Runs swaks (the sending MTA of the e2e tests) against a local port. */
import { findTool } from "../_helpers/tools.ts";

/** Runs swaks against `port` with extra arguments; returns its exit code and transcript. */
export async function swaks(
  port: number,
  args: readonly string[],
): Promise<{ code: number; out: string }> {
  const bin = await findTool("swaks") ?? "swaks";
  const out = await new Deno.Command(bin, {
    args: ["--server", `127.0.0.1:${port}`, "--helo", "client.test", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

/** A login on the submission port: who authenticates, and the envelope sender. */
export interface SwaksLogin {
  readonly user: string;
  readonly password: string;
  readonly from: string;
}

/**
 * Submits one message to `to` with swaks: STARTTLS, then AUTH PLAIN as `login.user`, MAIL
 * FROM `login.from`; `extra` adds arguments (`--data @file`, `--header ...`).
 */
export function swaksSubmit(
  port: number,
  login: SwaksLogin,
  to: string,
  extra: readonly string[] = [],
): Promise<{ code: number; out: string }> {
  return swaks(port, [
    "--tls",
    ...["--auth", "PLAIN", "--auth-user", login.user, "--auth-password", login.password],
    ...["--from", login.from, "--to", to],
    ...extra,
  ]);
}
