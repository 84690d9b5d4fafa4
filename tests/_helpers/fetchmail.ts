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

/** One ODMR poll of the provider on 127.0.0.1, handing the mail to 127.0.0.1:`smtpPort`. */
export interface FetchmailPoll {
  readonly port: number;
  readonly smtpPort: number;
  /** Default alice / alice-pw. */
  readonly user?: string;
  readonly password?: string;
  readonly domains: readonly string[];
  /** TLS verified against `caFile` (the certificate names localhost), or not verified. */
  readonly ssl?: { readonly caFile: string } | "unverified";
}

/** The rc file text for `poll` (also bench/_serve.ts's, for the fetch benchmark). */
export function fetchmailRc(poll: FetchmailPoll): string {
  const ssl = poll.ssl === undefined
    ? []
    : poll.ssl === "unverified"
    ? ["  ssl no sslcertck"]
    : [`  ssl sslcertck sslcertfile "${poll.ssl.caFile}" sslcommonname localhost`];
  return [
    "set no syslog",
    `poll 127.0.0.1 with protocol ODMR port ${poll.port} timeout 60`,
    `  user "${poll.user ?? "alice"}" password "${poll.password ?? "alice-pw"}"`,
    `  fetchdomains ${poll.domains.join(",")}`,
    `  smtphost 127.0.0.1/${poll.smtpPort}`,
    ...ssl,
    "",
  ].join("\n");
}

/** Runs fetchmail once against the provider's ODMR port with a private rc file and HOME. */
export async function runFetchmail(opts: FetchmailPoll): Promise<FetchmailRun> {
  const home = await Deno.makeTempDir({ prefix: "fetchmail-home-" });
  try {
    const rc = fetchmailRc(opts);
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
