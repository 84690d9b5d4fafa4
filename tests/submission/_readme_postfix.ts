/**
 * The Pi's Postfix settings as the README gives them ("Sending through the VPS"), read from
 * README.md itself so that the relay test runs what users copy, and a README edit that breaks
 * them breaks the test. Deployment names and paths are swapped for the test's.
 */
import { REPO_ROOT } from "../_helpers/server_process.ts";

/** What the README's deployment names and paths stand for in a test. */
export interface RelayTarget {
  readonly host: string;
  readonly port: number;
  /** Replaces /etc/postfix/sasl_passwd. */
  readonly passwordMap: string;
  /** Replaces /etc/ssl/certs/ca-certificates.crt. */
  readonly caFile: string;
}

/** The README's main.cf block and sasl_passwd line, as written there. */
export interface ReadmePostfix {
  readonly mainCf: Readonly<Record<string, string>>;
  /** The `sasl_passwd` line, e.g. `[relay.example.net]:587 alice:PASSWORD`. */
  readonly passwordLine: string;
}

const SECTION = "## Sending through the VPS";

/** Reads the README's Postfix lines; throws naming what is missing. */
export async function readReadmePostfix(): Promise<ReadmePostfix> {
  const readme = await Deno.readTextFile(`${REPO_ROOT}README.md`);
  const start = readme.indexOf(SECTION);
  if (start < 0) throw new Error(`README.md has no "${SECTION}" section`);
  const end = readme.indexOf("\n## ", start + SECTION.length);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const block = section.match(/\/etc\/postfix\/main\.cf`[^\n]*\n\n```\n([\s\S]*?)```/);
  if (block?.[1] === undefined) throw new Error("README.md: no main.cf block in the section");
  const mainCf: Record<string, string> = {};
  for (const line of block[1].split("\n")) {
    if (line.trim() === "") continue;
    const m = line.match(/^(\w+) = (.+)$/);
    if (m?.[1] === undefined || m[2] === undefined) {
      throw new Error(`README.md: not a main.cf line: ${line}`);
    }
    mainCf[m[1]] = m[2];
  }
  const wrapper = section.match(
    /`relayhost = \[relay\.example\.net\]:465`, add\s+`smtp_tls_wrappermode = yes`/,
  );
  if (wrapper === null) throw new Error("README.md: the port-465 lines are not in the section");
  const pw = section.match(/echo '([^']+)' > \/etc\/postfix\/sasl_passwd/);
  if (pw?.[1] === undefined) throw new Error("README.md: no sasl_passwd line in the section");
  return { mainCf, passwordLine: pw[1] };
}

/** The README's settings with the deployment's names and paths replaced by `target`'s. */
export function forTarget(text: string, target: RelayTarget): string {
  return text
    .replaceAll("relay.example.net", target.host)
    .replaceAll(":587", `:${target.port}`)
    .replaceAll("/etc/postfix/sasl_passwd", target.passwordMap)
    .replaceAll("/etc/ssl/certs/ca-certificates.crt", target.caFile);
}

/** `forTarget` over every value of a main.cf mapping. */
export function mainCfForTarget(
  mainCf: Readonly<Record<string, string>>,
  target: RelayTarget,
): Record<string, string> {
  return Object.fromEntries(Object.entries(mainCf).map(([k, v]) => [k, forTarget(v, target)]));
}
