/**
 * A private Postfix instance (the "home server's Postfix" relaying through us in tests, the
 * comparison in bench/_postfix.ts): its own config_directory, queue_directory and
 * data_directory in a temp dir, a log file of its own, smtpd only when asked for (otherwise
 * mail comes in through its `sendmail -C DIR`). Never reads or writes /etc/postfix.
 * Master must start as root (it drops to the `postfix` user); `postfixUnavailable()` says why
 * not. Stopped with `postfix -c DIR stop`, and as a last resort its master PID is killed.
 * Master binds smtpd's port with SO_REUSEPORT: another Postfix on that port would share it, so
 * a start is kept only if its master listens there alone; on a spare port (`"spare"`) a start
 * that fails or shares is retried on another one, a bounded number of times.
 */
import { tcpListeners } from "./listeners.ts";
import { freePort } from "./spawned.ts";
import { findTool } from "./tools.ts";

const TOOLS = ["postfix", "postmap", "postqueue", "postsuper", "sendmail"] as const;
const COMMAND_DEADLINE_MS = 60_000;
/** Spare smtpd ports tried when the one picked was taken meanwhile. */
const MAX_START_ATTEMPTS = 5;

/** One message of `postqueue -j` (Postfix 3.1+), the fields tests read. */
export interface PostfixQueued {
  readonly "queue_name": string;
  readonly "queue_id": string;
  readonly sender: string;
  readonly recipients: readonly { address: string; delay_reason?: string }[];
}

/** A running private Postfix. */
export interface PrivatePostfix {
  readonly root: string;
  readonly configDir: string;
  readonly queueDir: string;
  /** smtpd's port on 127.0.0.1 (undefined without smtpd). */
  readonly smtpdPort: number | undefined;
  /** `postconf -c DIR -e KEY=VALUE …`, then `reload()`. */
  configure(settings: Readonly<Record<string, string>>): Promise<void>;
  /** `postfix reload`: new daemon processes, which reread main.cf and reopen tables. */
  reload(): Promise<void>;
  /** Writes `path` (mode 0600) and builds its `hash:` table with `postmap`. */
  writeHashTable(path: string, text: string): Promise<void>;
  /**
   * Injects `message` with `sendmail -C DIR [-f from] -i -- to…` (exit 0 = in the maildrop);
   * without `from` the sender is the invoking user at myorigin, as for local programs.
   */
  sendmail(from: string | undefined, to: readonly string[], message: string): Promise<void>;
  /** `postqueue -j`: what Postfix still holds. */
  queue(): Promise<PostfixQueued[]>;
  /** `postqueue -f`: try every deferred message now. */
  flush(): Promise<void>;
  /** `postsuper -c DIR ARGS…` (e.g. `-H ALL` releases what is on hold, `-d ALL` deletes). */
  postsuper(...args: string[]): Promise<void>;
  /** Queue files in `queues` (subdirectories of the queue directory), counted on disk. */
  queueFiles(queues: readonly string[]): Promise<number>;
  /** Polls `queue()` every 100 ms until `pred` holds; throws with the log tail after `timeoutMs`. */
  waitQueue(pred: (q: PostfixQueued[]) => boolean, timeoutMs: number): Promise<PostfixQueued[]>;
  /** This instance's log (maillog_file). */
  log(): Promise<string>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Why a private Postfix cannot run here, or undefined if it can. */
export async function postfixUnavailable(): Promise<string | undefined> {
  for (const tool of TOOLS) {
    if ((await findTool(tool)) === undefined) return `${tool} not installed`;
  }
  if (Deno.uid() !== 0) return "postfix needs root to start master";
  return undefined;
}

/** Where the instance lives and what it listens on, beyond main.cf. */
export interface PostfixPlace {
  /**
   * The instance lives in `<parentDir>/postfix` (made if missing; no random name: the queue
   * directory's sockets must stay within 108 bytes of path); default a fresh temp dir.
   */
  readonly parentDir?: string;
  /** Run smtpd on 127.0.0.1:PORT, or on a spare port the helper picks (default: none). */
  readonly smtpdPort?: number | "spare";
}

/** Starts Postfix with `settings` added to (and overriding) the instance's own main.cf lines. */
export async function startPrivatePostfix(
  settings: Readonly<Record<string, string>>,
  place: PostfixPlace = {},
): Promise<PrivatePostfix> {
  const why = await postfixUnavailable();
  if (why !== undefined) throw new Error(`cannot start Postfix: ${why}`);
  let root: string;
  if (place.parentDir === undefined) root = await Deno.makeTempDir({ prefix: "odmr-postfix-" });
  else {
    root = `${place.parentDir}/postfix`;
    await Deno.mkdir(root, { recursive: true });
  }
  const configDir = `${root}/etc`;
  const queueDir = `${root}/spool`;
  const dataDir = `${root}/data`;
  for (const d of [configDir, queueDir, dataDir]) await Deno.mkdir(d);
  // The daemons run as mail_owner and must reach their directories.
  for (const d of [place.parentDir, root, configDir, queueDir]) {
    if (d !== undefined) await Deno.chmod(d, 0o755);
  }
  const owner = await postfixIds();
  await Deno.chown(dataDir, owner.uid, owner.gid);
  await Deno.chmod(dataDir, 0o700);
  const main = { ...instanceSettings(root), ...settings };
  await Deno.writeTextFile(
    `${configDir}/main.cf`,
    Object.entries(main).map(([k, v]) => `${k} = ${v}\n`).join(""),
  );
  let running = false;
  let smtpdPort: number | undefined;
  const tool = async (name: (typeof TOOLS)[number] | "postconf") => {
    const path = await findTool(name);
    if (path === undefined) throw new Error(`${name} not installed`);
    return path;
  };
  const log = async () => {
    try {
      return await Deno.readTextFile(`${root}/maillog`);
    } catch {
      return "";
    }
  };
  const run = async (name: (typeof TOOLS)[number] | "postconf", args: string[], stdin?: string) => {
    const r = await runTool(await tool(name), args, stdin);
    if (r.code !== 0) {
      const tail = (await log()).trimEnd().split("\n").slice(-10).join("\n");
      throw new Error(`${name} ${args.join(" ")} failed (${r.code}): ${r.output}\n${tail}`);
    }
    return r.output;
  };
  const queue = async () => {
    const out = await run("postqueue", ["-c", configDir, "-j"]);
    return out.split("\n").filter((l) => l.trim() !== "").map((l) =>
      JSON.parse(l) as PostfixQueued
    );
  };
  const stop = async () => {
    if (!running) return;
    running = false;
    try {
      await run("postfix", ["-c", configDir, "stop"]);
    } catch (err) {
      // Last resort: the master PID this instance wrote, and nothing else.
      const pid = Number((await Deno.readTextFile(`${queueDir}/pid/master.pid`)).trim());
      if (pid > 0) Deno.kill(pid, "SIGKILL");
      throw err;
    } finally {
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  };
  const pf: PrivatePostfix = {
    root,
    configDir,
    queueDir,
    get smtpdPort() {
      return smtpdPort;
    },
    configure: async (more) => {
      const pairs = Object.entries(more).map(([k, v]) => `${k}=${v}`);
      await run("postconf", ["-c", configDir, "-e", ...pairs]);
      await run("postfix", ["-c", configDir, "reload"]);
    },
    reload: async () => {
      await run("postfix", ["-c", configDir, "reload"]);
    },
    writeHashTable: async (path, text) => {
      await Deno.writeTextFile(path, text, { mode: 0o600 });
      await run("postmap", ["-c", configDir, `hash:${path}`]);
    },
    sendmail: async (from, to, message) => {
      const sender = from === undefined ? [] : ["-f", from];
      await run("sendmail", ["-C", configDir, ...sender, "-i", "--", ...to], message);
    },
    queue,
    flush: async () => {
      await run("postqueue", ["-c", configDir, "-f"]);
    },
    postsuper: async (...args) => {
      await run("postsuper", ["-c", configDir, ...args]);
    },
    queueFiles: async (queues) => {
      let n = 0;
      for (const q of queues) n += await countFiles(`${queueDir}/${q}`);
      return n;
    },
    waitQueue: async (pred, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      let last: PostfixQueued[] = [];
      while (Date.now() < deadline) {
        last = await queue();
        if (pred(last)) return last;
        await new Promise((r) => setTimeout(r, 100));
      }
      const tail = (await log()).trimEnd().split("\n").slice(-15).join("\n");
      throw new Error(
        `Postfix queue not as expected within ${timeoutMs} ms: ${JSON.stringify(last)}\n${tail}`,
      );
    },
    log,
    stop,
    [Symbol.asyncDispose]: stop,
  };
  const attempts = place.smtpdPort === "spare" ? MAX_START_ATTEMPTS : 1;
  const failures: string[] = [];
  await Deno.writeTextFile(`${configDir}/master.cf`, POSTFIX_MASTER_CF);
  try {
    await run("postfix", ["-c", configDir, "check"]);
  } catch (err) {
    await Deno.remove(root, { recursive: true }).catch(() => {});
    throw err;
  }
  for (let attempt = 0; attempt < attempts; attempt++) {
    smtpdPort = place.smtpdPort === "spare" ? freePort() : place.smtpdPort;
    const smtpd = smtpdPort === undefined ? "" : `127.0.0.1:${smtpdPort} inet n - n - - smtpd\n`;
    await Deno.writeTextFile(`${configDir}/master.cf`, smtpd + POSTFIX_MASTER_CF);
    try {
      await run("postfix", ["-c", configDir, "start"]);
    } catch (err) {
      failures.push(`port ${smtpdPort}: ${err instanceof Error ? err.message : String(err)}`);
      continue; // master exited (a bind error is fatal to it): nothing left running
    }
    running = true;
    const listeners = smtpdPort === undefined ? 1 : await tcpListeners("127.0.0.1", smtpdPort);
    if (listeners === undefined || listeners === 1) return pf;
    failures.push(`port ${smtpdPort}: ${listeners} sockets listen there (SO_REUSEPORT)`);
    running = false;
    await run("postfix", ["-c", configDir, "stop"]).catch(() => {});
  }
  await Deno.remove(root, { recursive: true }).catch(() => {});
  throw new Error(`Postfix did not start alone on its port:\n${failures.join("\n")}`);
}

/** The lines that make the instance private (paths, names, logging); tests add the rest. */
function instanceSettings(root: string): Record<string, string> {
  return {
    "compatibility_level": "3.6",
    "queue_directory": `${root}/spool`,
    "data_directory": `${root}/data`,
    "mail_owner": "postfix",
    "setgid_group": "postdrop",
    "inet_interfaces": "loopback-only",
    "inet_protocols": "ipv4",
    "mydestination": "",
    "local_recipient_maps": "",
    "alias_maps": "",
    "alias_database": "",
    "maillog_file_prefixes": root,
    "maillog_file": `${root}/maillog`,
    "biff": "no",
  };
}

/**
 * Only what a relaying client needs: pickup for sendmail, the queue manager and its helpers,
 * the SMTP client and TLS manager, the log daemon. No smtpd (`smtpdPort` adds one), no local
 * delivery, no chroot (the temp queue has no chroot skeleton).
 */
const POSTFIX_MASTER_CF = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

async function runTool(
  path: string,
  args: string[],
  stdin?: string,
): Promise<{ code: number; output: string }> {
  const child = new Deno.Command(path, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(COMMAND_DEADLINE_MS),
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const d = new TextDecoder();
  return { code: out.code, output: d.decode(out.stdout) + d.decode(out.stderr) };
}

async function postfixIds(): Promise<{ uid: number; gid: number }> {
  const passwd = await Deno.readTextFile("/etc/passwd");
  const m = passwd.match(/^postfix:[^:]*:(\d+):(\d+):/m);
  if (m?.[1] === undefined || m[2] === undefined) throw new Error("no postfix user in /etc/passwd");
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

/** Files below `dir`, recursively (Postfix hashes queue files into subdirectories); 0 if none. */
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
