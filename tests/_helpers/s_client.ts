/**
 * One `openssl s_client` session against 127.0.0.1 (implicit TLS, or `-starttls smtp`), with a
 * client certificate if given: the lines are sent after the handshake, and everything the
 * server said is returned once it closes (SIGKILL after 15 s, by PID).
 */
import type { CertFiles } from "./self_signed.ts";

/** Runs the session; `lines` are sent with CRLF. */
export async function sClient(
  port: number,
  lines: readonly string[],
  opts: { readonly cert?: CertFiles; readonly starttls?: boolean } = {},
): Promise<string> {
  const args = ["s_client", "-connect", `127.0.0.1:${port}`, "-crlf", "-quiet", "-ign_eof"];
  if (opts.starttls) args.push("-starttls", "smtp");
  if (opts.cert) args.push("-cert", opts.cert.cert, "-key", opts.cert.key);
  const child = new Deno.Command("openssl", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(lines.map((l) => `${l}\n`).join("")));
  await writer.close();
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  try {
    return new TextDecoder().decode((await child.output()).stdout);
  } finally {
    clearTimeout(timer);
  }
}
