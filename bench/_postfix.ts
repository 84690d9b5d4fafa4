// A private Postfix instance for comparison: its own config_directory, queue_directory and
// data_directory in a temp dir, smtpd on a spare 127.0.0.1 port, mail for bench.example (and
// any further domains) held on arrival (HOLD) so that only queue ingest is measured, and
// released to an smtp-sink on demand. Never reads or writes /etc/postfix's main.cf; stopped with `postfix -c DIR stop`.

import { hasExecutable, runCommand, sleep } from "./_proc.ts";
import { POSTFIX_MASTER_CF } from "../tests/_helpers/postfix.ts";

const POSTFIX = "/usr/sbin/postfix";
const POSTSUPER = "/usr/sbin/postsuper";
const POSTQUEUE = "/usr/sbin/postqueue";
const QUEUES = ["maildrop", "incoming", "active", "deferred", "hold"] as const;

/** Options for `PrivatePostfix.start`. */
export interface PostfixOptions {
  /** Parent temp dir; the instance lives in a subdirectory. */
  readonly dir: string;
  /** 127.0.0.1 port for smtpd. */
  readonly smtpPort: number;
  /** Port of the smtp-sink that the domains are relayed to. */
  readonly relayPort: number;
  /** Address of that smtp-sink (default 127.0.0.1). */
  readonly relayHost?: string;
  /** The relayed domain. */
  readonly domain: string;
  /** Further domains relayed (and held) the same way. */
  readonly moreDomains?: readonly string[];
}

/** A running private Postfix (master) instance. */
export class PrivatePostfix {
  readonly root: string;
  readonly configDir: string;
  readonly queueDir: string;
  readonly smtpPort: number;
  #running = false;

  private constructor(root: string, smtpPort: number) {
    this.root = root;
    this.configDir = `${root}/etc`;
    this.queueDir = `${root}/spool`;
    this.smtpPort = smtpPort;
  }

  /** Why Postfix cannot run here, or undefined if it can. */
  static async unavailable(): Promise<string | undefined> {
    for (const p of [POSTFIX, POSTSUPER, POSTQUEUE]) {
      if (!(await hasExecutable(p))) return `${p} not installed`;
    }
    if (Deno.uid() !== 0) return "postfix needs root to start master";
    return undefined;
  }

  /** Writes main.cf/master.cf, runs `postfix check` and `postfix start`. */
  static async start(opts: PostfixOptions): Promise<PrivatePostfix> {
    const root = `${opts.dir}/postfix`;
    const pf = new PrivatePostfix(root, opts.smtpPort);
    await Deno.mkdir(pf.configDir, { recursive: true });
    await Deno.mkdir(pf.queueDir, { recursive: true });
    await Deno.mkdir(`${root}/data`, { recursive: true });
    // The daemons run as mail_owner and must reach the temp dirs.
    for (const d of [opts.dir, root, pf.configDir, pf.queueDir]) await Deno.chmod(d, 0o755);
    const owner = await postfixIds();
    await Deno.chown(`${root}/data`, owner.uid, owner.gid);
    await Deno.chmod(`${root}/data`, 0o700);
    await Deno.writeTextFile(`${pf.configDir}/main.cf`, mainCf(root, opts));
    await Deno.writeTextFile(`${pf.configDir}/master.cf`, masterCf(opts.smtpPort));
    await pf.#postfix("check");
    await pf.#postfix("start");
    pf.#running = true;
    return pf;
  }

  /** Number of queue files (maildrop, incoming, active, deferred, hold). */
  async queueCount(): Promise<number> {
    let n = 0;
    for (const q of QUEUES) n += await countFiles(`${this.queueDir}/${q}`);
    return n;
  }

  /** Number of queue files in the hold queue. */
  heldCount(): Promise<number> {
    return countFiles(`${this.queueDir}/hold`);
  }

  /** Waits until `heldCount()` reaches `n` (polls every 50 ms, up to `timeoutMs`). */
  async waitHeld(n: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await this.heldCount()) >= n) return;
      await sleep(50);
    }
    throw new Error(`postfix: fewer than ${n} held messages after ${timeoutMs} ms`);
  }

  /** Releases every held message and asks for immediate delivery (`postsuper -H`, `postqueue -f`). */
  async release(): Promise<void> {
    await mustRun(POSTSUPER, ["-c", this.configDir, "-H", "ALL"]);
    await mustRun(POSTQUEUE, ["-c", this.configDir, "-f"]);
  }

  /** Waits until the queue is empty; returns false on timeout. Polls every 20 ms. */
  async waitEmpty(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await this.queueCount()) === 0) return true;
      await sleep(20);
    }
    return false;
  }

  /** Deletes every queued message (`postsuper -d ALL`). */
  async purge(): Promise<void> {
    await mustRun(POSTSUPER, ["-c", this.configDir, "-d", "ALL"]);
  }

  /** Stops master (`postfix stop`); safe to call twice. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    await this.#postfix("stop").catch(async (e) => {
      // Last resort: the master PID this instance wrote, and nothing else.
      const pid = Number((await Deno.readTextFile(`${this.queueDir}/pid/master.pid`)).trim());
      if (pid > 0) Deno.kill(pid, "SIGKILL");
      throw e;
    });
  }

  /** Last lines of this instance's log (maillog_file), for error messages. */
  async logTail(lines = 10): Promise<string> {
    try {
      const text = await Deno.readTextFile(`${this.root}/maillog`);
      return text.trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  async #postfix(verb: string): Promise<void> {
    const r = await runCommand(POSTFIX, ["-c", this.configDir, verb], 60_000);
    if (r.code !== 0) {
      throw new Error(`postfix ${verb} failed (${r.code}): ${r.output}\n${await this.logTail()}`);
    }
  }
}

async function mustRun(cmd: string, args: string[]): Promise<void> {
  const r = await runCommand(cmd, args, 60_000);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.output}`);
}

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile) n++;
      else if (e.isDirectory) n += await countFiles(`${dir}/${e.name}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return n;
}

async function postfixIds(): Promise<{ uid: number; gid: number }> {
  const passwd = await Deno.readTextFile("/etc/passwd");
  const m = passwd.match(/^postfix:[^:]*:(\d+):(\d+):/m);
  if (m?.[1] === undefined || m[2] === undefined) throw new Error("no postfix user in /etc/passwd");
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

function mainCf(root: string, opts: PostfixOptions): string {
  const domains = [opts.domain, ...(opts.moreDomains ?? [])];
  const nexthop = `smtp:[${opts.relayHost ?? "127.0.0.1"}]:${opts.relayPort}`;
  const transport = domains.map((d) => `${d}=${nexthop}`).join(", ");
  const hold = domains.map((d) => `${d}=HOLD`).join(", ");
  return `# Private benchmark instance (bench/_postfix.ts); not the system's Postfix.
compatibility_level = 3.6
myhostname = bench.localdomain
mydomain = localdomain
myorigin = $myhostname
mydestination =
local_recipient_maps =
mynetworks = 127.0.0.0/8
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
relay_domains = ${domains.join(", ")}
transport_maps = inline:{ ${transport} }
# HOLD on arrival: cleanup writes the queue file (fsynced) into hold/, qmgr never sees it,
# so smtp-source's timing is pure queue ingest. release() moves it on for the drain.
smtpd_recipient_restrictions = check_recipient_access inline:{ ${hold} }, permit_mynetworks, reject
queue_directory = ${root}/spool
data_directory = ${root}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = ${root}
maillog_file = ${root}/maillog
smtp_dns_support_level = disabled
alias_maps =
alias_database =
biff = no
message_size_limit = 104857600
`;
}

function masterCf(smtpPort: number): string {
  // The relaying client's services (tests/_helpers/postfix.ts) plus an smtpd to receive on.
  return `127.0.0.1:${smtpPort} inet n - n - - smtpd\n${POSTFIX_MASTER_CF}`;
}
