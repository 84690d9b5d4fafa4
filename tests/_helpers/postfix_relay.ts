/**
 * A private Postfix as a home server's MTA for the end-to-end tests of the customer side: it
 * takes mail for example.org on 127.0.0.1:PORT, relays its known recipients to a capture
 * server, refuses the others at RCPT (550), and drops clients that break RFC 2920's rules.
 */
import { ok as assert } from "node:assert/strict";
import { isCi } from "./tools.ts";
import { postfixUnavailable, type PrivatePostfix, startPrivatePostfix } from "./postfix.ts";
import {
  addUser,
  queueList,
  removeTestFiles,
  type ServerProcess,
  startServer,
} from "./server_process.ts";
import { type CaptureServer, startCaptureServer } from "./capture_smtp.ts";
import { submit } from "./smtp_submit.ts";

/** True when Postfix can run here; else prints why and returns false (under CI=true, throws). */
async function postfixRuns(what: string): Promise<boolean> {
  const why = await postfixUnavailable();
  if (why === undefined) return true;
  if (isCi()) throw new Error(`${why}, and CI=true forbids skipping`);
  // deno-lint-ignore no-console -- the printed reason is the point of a skip (docs/architecture.md "Conventions")
  console.log(`skip: ${what}: ${why}`);
  return false;
}

/** What a test of the customer side gets from withPostfixRelay. */
export interface PostfixRelay {
  readonly server: ServerProcess;
  readonly capture: CaptureServer;
  readonly dir: string;
  /** Postfix's smtpd port on 127.0.0.1. */
  readonly port: number;
}

/**
 * `serve` with alice owning example.org and `messages` queued (message i's body names i),
 * Postfix relaying the `known` addresses to a capture server; runs `fn`, then checks that
 * Postfix saw no improper pipelining. Skips (see postfixRuns) when Postfix cannot run.
 */
export async function withPostfixRelay(
  opts: {
    readonly what: string;
    readonly messages: readonly { readonly from: string; readonly to: readonly string[] }[];
    readonly known: readonly string[];
  },
  fn: (relay: PostfixRelay) => Promise<void>,
): Promise<void> {
  if (!(await postfixRuns(opts.what))) return;
  const server = await startServer();
  const dir = await Deno.makeTempDir({ prefix: "odmr-postfix-relay-" });
  const capture = await startCaptureServer();
  try {
    await addUser(server.configPath, "alice", ["example.org", "example.com"], "alice-pw");
    const enc = new TextEncoder();
    for (const [i, m] of opts.messages.entries()) {
      const body = enc.encode(`Subject: m${i}\r\n\r\nbody ${i}\r\n`);
      const r = await submit({ port: server.smtp[0]!.port, from: m.from, to: [...m.to], body });
      assert(r.final?.startsWith("250"), r.replies.join(" | "));
    }
    await using postfix = await startRelayPostfix({
      dir,
      capturePort: capture.port,
      known: opts.known,
    });
    await fn({ server, capture, dir, port: postfix.smtpdPort ?? 0 });
    const log = await postfix.log();
    assert(!/improper command pipelining/.test(log), log);
  } finally {
    await capture.close();
    await server.stop();
    await removeTestFiles(server);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Postfix in `dir`, smtpd on a spare 127.0.0.1 port, example.org's `known` addresses relayed. */
function startRelayPostfix(
  opts: { dir: string; capturePort: number; known: readonly string[] },
): Promise<PrivatePostfix> {
  const known = opts.known.map((a) => `${a}=OK`).join(", ");
  return startPrivatePostfix({
    "myhostname": "pi.example.org",
    "mynetworks": "127.0.0.0/8",
    "relay_domains": "example.org",
    "relay_recipient_maps": `inline:{ ${known} }`,
    "transport_maps": `inline:{ example.org=smtp:[127.0.0.1]:${opts.capturePort} }`,
    "smtpd_recipient_restrictions": "permit_mynetworks, reject",
    "smtpd_forbid_unauth_pipelining": "yes",
    "smtp_dns_support_level": "disabled",
  }, { parentDir: opts.dir, smtpdPort: "spare" });
}

type Listed = { recipients: { address: string; status: string }[] }[];

/** The provider's recipients at `domain` still queued, as sorted `address:status`. */
export async function queuedStatuses(configPath: string, domain: string): Promise<string[]> {
  const left = await queueList(configPath, domain) as Listed;
  return left.flatMap((m) =>
    m.recipients.filter((r) => r.address.endsWith(`@${domain}`))
      .map((r) => `${r.address}:${r.status}`)
  ).sort();
}
