/**
 * Postfix's `smtp-sink` as a receiving MTA, for the outbound tests and the benchmarks (the
 * receiving end of the drain and outbound benches, the ceiling of the ingest bench): on a spare
 * 127.0.0.1 port or on a given address (an MX on 127.0.0.4:25; port 25 needs root), found
 * ready by connecting (bounded), stopped by its PID. `-c` makes it print running counters,
 * which tell how many messages and sessions it has seen. It can keep what it receives: one
 * file per transaction in a temp dir (`dumpDir`, counted by `count()`) or all in one file.
 */
import { tcpListeners } from "./listeners.ts";
import { freePort, spawn, type Spawned, stop } from "./spawned.ts";
import { findTool } from "./tools.ts";

/** What smtp-sink keeps of what it receives (default: nothing). */
export interface SmtpSinkOptions {
  /** One file per transaction in a temp dir of its own, removed by `stop()` (`-d`). */
  readonly dumpDir?: boolean;
  /** Every transaction appended to this file, which the postfix user can write (`-D`). */
  readonly dumpFile?: string;
}

const READY_DEADLINE_MS = 10_000;
/** Spare ports tried when the one picked was taken meanwhile. */
const MAX_START_ATTEMPTS = 5;
/** How long the readiness probe waits for a greeting on an open connection. */
const GREETING_WAIT_MS = 2_000;

/** A running smtp-sink. */
export class SmtpSink {
  readonly host: string;
  readonly port: number;
  /** The directory of `dumpDir`, else undefined. */
  readonly dir: string | undefined;
  readonly #proc: Spawned;

  private constructor(host: string, port: number, dir: string | undefined, proc: Spawned) {
    this.host = host;
    this.port = port;
    this.dir = dir;
    this.#proc = proc;
  }

  /**
   * Starts smtp-sink on `at` (default 127.0.0.1, a spare port); waits until it greets with its
   * own name, alone on the port. A spare port picked here can be taken before smtp-sink binds it
   * (a test run beside another): then smtp-sink exits at start, or another program answers
   * there, or another smtp-sink shares the port (both bind with SO_REUSEPORT), and another port
   * is tried (bounded).
   */
  static async start(
    at?: { readonly host: string; readonly port: number },
    opts: SmtpSinkOptions = {},
  ): Promise<SmtpSink> {
    const bin = await findTool("smtp-sink");
    if (bin === undefined) throw new Error("smtp-sink not installed");
    const attempts = at === undefined ? MAX_START_ATTEMPTS : 1;
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      try {
        return await SmtpSink.#startOn(bin, at?.host ?? "127.0.0.1", at?.port ?? freePort(), opts);
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  static async #startOn(
    bin: string,
    host: string,
    port: number,
    opts: SmtpSinkOptions,
  ): Promise<SmtpSink> {
    let dir: string | undefined;
    if (opts.dumpDir === true) {
      dir = await Deno.makeTempDir({ prefix: "odmr-smtp-sink-" });
      await Deno.chmod(dir, 0o777);
    }
    // As root smtp-sink must drop to another user after binding (it refuses to keep root),
    // who then writes the dumps. Backlog 1024: 50 parallel sessions never see a refusal.
    // A greeting name of its own (-h): another test's smtp-sink on the port greets otherwise.
    const name = `sink-${crypto.randomUUID().slice(0, 8)}.test`;
    const proc = spawn("smtp-sink", bin, [
      ...(Deno.uid() === 0 ? ["-u", "postfix"] : []),
      "-h",
      name,
      "-c",
      ...(dir === undefined ? [] : ["-d", `${dir}/%Y%m%d%H/%M.`]),
      ...(opts.dumpFile === undefined ? [] : ["-D", opts.dumpFile]),
      `${host}:${port}`,
      "1024",
    ]);
    const sink = new SmtpSink(host, port, dir, proc);
    let hasExited = false;
    proc.exited.then(() => hasExited = true);
    const deadline = Date.now() + READY_DEADLINE_MS;
    let greeting = "";
    let listeners: number | undefined;
    while (Date.now() < deadline && !hasExited) {
      greeting = await greetingAt(host, port);
      // Its own greeting: not another program (or smtp-sink) that holds the port, while
      // this one exits at start.
      if (greeting.startsWith(`220 ${name} `) && !hasExited) {
        // smtp-sink binds with SO_REUSEPORT: another smtp-sink on the port would share it.
        listeners = await tcpListeners(host, port);
        if (listeners === undefined || listeners === 1) return sink;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await sink.stop();
    const shared = listeners === undefined || listeners <= 1
      ? ""
      : `${listeners} sockets listen there (SO_REUSEPORT); `;
    throw new Error(
      `smtp-sink did not listen on ${host}:${port}: ${shared}${
        greeting === "" ? "" : `greeting ${JSON.stringify(greeting.slice(0, 60))}; `
      }${proc.tail.join(" | ")}`,
    );
  }

  /** Messages accepted so far (from the last `mesg=N` counter line). */
  messages(): number {
    return this.#counter("mesg");
  }

  /** SMTP sessions so far (from the last `sess=N` counter line). */
  sessions(): number {
    return this.#counter("sess");
  }

  #counter(name: "mesg" | "sess"): number {
    const pattern = new RegExp(`${name}=(\\d+)`);
    for (let i = this.#proc.tail.length - 1; i >= 0; i--) {
      const m = this.#proc.tail[i]?.match(pattern);
      if (m?.[1] !== undefined) return Number(m[1]);
    }
    return 0;
  }

  /** Waits until `messages()` ≥ n (polls every 20 ms, up to `timeoutMs`); returns whether it did. */
  async waitMessages(n: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.messages() >= n) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.messages() >= n;
  }

  /** Transactions dumped so far in `dir` (0 without `dumpDir`). */
  async count(): Promise<number> {
    return this.dir === undefined ? 0 : await countFiles(this.dir);
  }

  /** Stops this smtp-sink (by its PID) and removes its dump directory. */
  async stop(): Promise<void> {
    await stop(this.#proc);
    if (this.dir !== undefined) await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) n += await countFiles(`${dir}/${e.name}`);
    else if (e.isFile) n++;
  }
  return n;
}

/**
 * The first bytes a server at `host:port` sends within GREETING_WAIT_MS ("" when nothing
 * listens, or nothing came); the connection is closed after.
 */
async function greetingAt(host: string, port: number): Promise<string> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: host, port });
  } catch {
    return "";
  }
  const buf = new Uint8Array(256);
  const timer = setTimeout(() => conn.close(), GREETING_WAIT_MS);
  try {
    const n = await conn.read(buf);
    return n === null ? "" : new TextDecoder().decode(buf.subarray(0, n));
  } catch {
    return "";
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}
