/**
 * The real fetchmail (`protocol ODMR`) run once against a provider's ODMR port, with a private
 * rc file and HOME, handing the reversed session to a local SMTP server (`smtpPort`). Callers
 * register their test with toolTest(…, ["fetchmail"]) (tests/_helpers/tools.ts).
 */
import { findTool } from "./tools.ts";

/** fetchmail's exit code and everything it printed (-v). */
export interface FetchmailRun {
  readonly code: number;
  readonly output: string;
}

/** Runs fetchmail once against the provider's ODMR port with a private rc file and HOME. */
export async function runFetchmail(opts: {
  port: number;
  smtpPort: number;
  user?: string;
  password?: string;
  domains: readonly string[];
  ssl?: { caFile: string };
}): Promise<FetchmailRun> {
  const home = await Deno.makeTempDir({ prefix: "fetchmail-home-" });
  try {
    const rc = [
      "set no syslog",
      `poll 127.0.0.1 with protocol ODMR port ${opts.port} timeout 60`,
      `  user "${opts.user ?? "alice"}" password "${opts.password ?? "alice-pw"}"`,
      `  fetchdomains ${opts.domains.join(",")}`,
      `  smtphost 127.0.0.1/${opts.smtpPort}`,
      ...(opts.ssl
        ? [`  ssl sslcertck sslcertfile "${opts.ssl.caFile}" sslcommonname localhost`]
        : []),
      "",
    ].join("\n");
    const rcPath = `${home}/fetchmailrc`;
    await Deno.writeTextFile(rcPath, rc, { mode: 0o600 });
    const fetchmail = await findTool("fetchmail");
    const child = new Deno.Command(fetchmail ?? "fetchmail", {
      args: ["-f", rcPath, "--nodetach", "--pidfile", `${home}/pid`, "-v"],
      env: { HOME: home, FETCHMAILHOME: home },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    }, 120_000);
    const out = await child.output();
    clearTimeout(timer);
    const dec = new TextDecoder();
    return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}
