/**
 * The set-up the disk-full tests share: `serve` with its data directory and config on a small
 * tmpfs (root only: a test that cannot mount one skips with the reason), killed and the tmpfs
 * unmounted after the test whatever happened; mail from a sender, alice collecting it over ATRN,
 * and what is still queued.
 */
import type { ServerProcess, StartServerOptions } from "../_helpers/server_process.ts";
import { addUser, queueList, startServer } from "../_helpers/server_process.ts";
import { queueIdOf, submit, submitAccepted, type SubmitResult } from "../_helpers/smtp_submit.ts";
import type { CustomerScript } from "../_helpers/scripted_customer.ts";
import { mountTmpfs, unmountTmpfs } from "../_helpers/tmpfs.ts";

const enc = new TextEncoder();

/** A mounted tmpfs for one test. */
export interface Tmpfs {
  /** Its mount point (`fillUp(`${dir}/filler`)` fills it). */
  readonly dir: string;
  /** Starts `serve` with data in `${dir}/data` and its config in `${dir}/config.yaml`. */
  start(opts?: Omit<StartServerOptions, "dataDir" | "configPath">): Promise<ServerProcess>;
}

/**
 * Runs `fn` with a tmpfs of `size` (`16m`); every `serve` it started is killed (kill -9) and the
 * tmpfs unmounted after. Without a tmpfs (not root) `fn` does not run: `testName` says why.
 */
export async function onTmpfs(
  testName: string,
  size: string,
  fn: (tmpfs: Tmpfs) => Promise<void>,
): Promise<void> {
  const dir = await mountTmpfs(testName, size);
  if (dir === undefined) return;
  const started: ServerProcess[] = [];
  const start = async (opts: Omit<StartServerOptions, "dataDir" | "configPath"> = {}) => {
    const server = await startServer({
      ...opts,
      dataDir: `${dir}/data`,
      configPath: `${dir}/config.yaml`,
    });
    started.push(server);
    return server;
  };
  try {
    await fn({ dir, start });
  } finally {
    for (const server of started) await server.kill9();
    await unmountTmpfs(dir);
  }
}

/** A message from `from` (default s@sender.test) to `to` on serve's first SMTP port. */
function mail(
  server: ServerProcess,
  to: string,
  body: string,
  from = "s@sender.test",
): Parameters<typeof submit>[0] {
  return { port: server.smtp[0]!.port, from, to: [to], body: enc.encode(body) };
}

/** Submits one message (`mail`). */
export function mailTo(server: ServerProcess, to: string, body: string): Promise<SubmitResult> {
  return submit(mail(server, to, body));
}

/**
 * `mailTo` for a message serve must take: throws unless it got a 250; returns that reply.
 * `from` "" sends a bounce (no failure report comes back for it).
 */
export function mailAccepted(
  server: ServerProcess,
  to: string,
  body: string,
  from?: string,
): Promise<string> {
  return submitAccepted(mail(server, to, body, from));
}

/**
 * A queue left by a clean stop: starts `serve`, lets alice own example.org, queues `count`
 * messages (to m0@example.org, m1@…), stops serve (exit 0, or it throws with the logs). Returns
 * the stopped server and the messages' queue ids, in order.
 */
export async function stoppedWithMail(
  start: Tmpfs["start"],
  count: number,
): Promise<{ server: ServerProcess; ids: string[] }> {
  const server = await start();
  await addUser(server.configPath, "alice", ["example.org"]);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const reply = await mailAccepted(server, `m${i}@example.org`, `Subject: ${i}\r\n\r\nbody\r\n`);
    ids.push(queueIdOf(reply) ?? reply);
  }
  const code = await server.stop();
  if (code !== 0) throw new Error(`serve stopped with ${code}:\n${server.logs()}`);
  return { server, ids };
}

/** The customer alice (CRAM-MD5, password `alice-pw` unless given) collecting example.org over ATRN. */
export function aliceAtrn(server: ServerProcess, password = "alice-pw"): CustomerScript {
  return {
    port: server.odmr[0]!.port,
    auth: { mechanism: "CRAM-MD5", user: "alice", password },
    atrn: "example.org",
    timeoutMs: 20_000,
  };
}

/** The recipients still queued (`queue list`), in its order. */
export async function queuedAddresses(configPath: string): Promise<string[]> {
  const listed = await queueList(configPath) as { recipients: { address: string }[] }[];
  return listed.flatMap((m) => m.recipients.map((r) => r.address));
}
