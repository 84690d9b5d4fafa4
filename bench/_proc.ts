// Process helpers for the benchmarks: spawn with a registry so run.ts can stop every process
// it started (by PID, even on failure), run a command to completion under a deadline, find a
// spare loopback port, and read a process's peak RSS. Benchmarks only; no test imports this.

/** A child process started by the benchmarks, with its output collected line by line. */
export interface Spawned {
  readonly name: string;
  readonly pid: number;
  readonly child: Deno.ChildProcess;
  /** Last lines of stdout+stderr (bounded), for error messages. */
  readonly tail: string[];
  /** Resolves with the exit code. */
  readonly exited: Promise<number>;
  /** Resolves with the first output line matching `pattern`, or rejects after `timeoutMs`. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
}

const TAIL_LINES = 40;
const started = new Set<Spawned>();

/** Options for `spawn` and `runCommand`. */
export interface SpawnOptions {
  readonly cwd?: string;
  readonly env?: Record<string, string>;
  readonly stdin?: string;
}

/** Starts `cmd args…`, registers it for `stopAll`, and keeps reading its output. */
export function spawn(name: string, cmd: string, args: string[], opts: SpawnOptions = {}): Spawned {
  const command = new Deno.Command(cmd, {
    args,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    ...(opts.env === undefined ? {} : { env: opts.env }),
  });
  const child = command.spawn();
  const tail: string[] = [];
  const waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      const m = w === undefined ? null : line.match(w.pattern);
      if (w !== undefined && m !== null) {
        waiters.splice(i, 1);
        w.resolve(m);
      }
    }
  };
  const pumps = [pumpLines(child.stdout, onLine), pumpLines(child.stderr, onLine)];
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    w.write(new TextEncoder().encode(opts.stdin)).then(() => w.close()).catch(() => {});
  }
  const exited = Promise.all([child.status, ...pumps]).then(([s]) => s.code);
  const spawned: Spawned = {
    name,
    pid: child.pid,
    child,
    tail,
    exited,
    waitForLine(pattern, timeoutMs) {
      for (const line of tail) {
        const m = line.match(pattern);
        if (m !== null) return Promise.resolve(m);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push({
          pattern,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
        exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`${name} exited (${code}) before ${pattern}: ${tail.join(" | ")}`));
        });
      });
    },
  };
  started.add(spawned);
  exited.finally(() => started.delete(spawned));
  return spawned;
}

async function pumpLines(stream: ReadableStream<Uint8Array>, onLine: (l: string) => void) {
  const decoder = new TextDecoder();
  let buf = "";
  try {
    for await (const chunk of stream) {
      buf += decoder.decode(chunk, { stream: true });
      let nl = buf.search(/[\r\n]/);
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        if (line !== "") onLine(line);
        buf = buf.slice(nl + 1);
        nl = buf.search(/[\r\n]/);
      }
      // Bounded: a process that never writes a newline cannot grow this forever.
      if (buf.length > 65536) buf = buf.slice(-4096);
    }
  } catch {
    // The process went away; what we have is enough.
  }
  if (buf !== "") onLine(buf);
}

/** Sends SIGTERM to `p`, then SIGKILL after `graceMs`; waits for it to exit. */
export async function stop(p: Spawned, graceMs = 5000): Promise<void> {
  try {
    p.child.kill("SIGTERM");
  } catch {
    return; // already gone
  }
  const timer = setTimeout(() => {
    try {
      p.child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, graceMs);
  await p.exited;
  clearTimeout(timer);
}

/** Stops every process started through `spawn` that is still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((p) => stop(p)));
}

/** Result of `runCommand`. */
export interface RunResult {
  readonly code: number;
  readonly output: string;
  readonly ms: number;
  /** Highest VmHWM seen while it ran (sampled every 20 ms), when `sampleRss` was set. */
  readonly peakRssBytes?: number;
}

/** Runs a command to completion (killed after `timeoutMs`) and returns code, output, wall time. */
export async function runCommand(
  cmd: string,
  args: string[],
  timeoutMs: number,
  opts: SpawnOptions & { sampleRss?: boolean } = {},
): Promise<RunResult> {
  const t0 = performance.now();
  const p = spawn(cmd, cmd, args, opts);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stop(p, 1000);
  }, timeoutMs);
  let peak: number | undefined;
  let sampling = opts.sampleRss === true;
  const sampler = (async () => {
    // Bounded by the process's lifetime, which the timer above bounds.
    while (sampling) {
      const rss = await peakRssBytes(p.pid);
      if (rss !== undefined) peak = Math.max(peak ?? 0, rss);
      await sleep(20);
    }
  })();
  const code = await p.exited;
  sampling = false;
  await sampler;
  clearTimeout(timer);
  const ms = performance.now() - t0;
  if (timedOut) throw new Error(`timed out after ${timeoutMs} ms: ${p.tail.join(" | ")}`);
  return {
    code,
    output: p.tail.join("\n"),
    ms,
    ...(peak === undefined ? {} : { peakRssBytes: peak }),
  };
}

/** A loopback TCP port that was free a moment ago (bind to 0, read, close). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Peak resident set size (VmHWM) of a process in bytes, or undefined if unreadable. */
export function peakRssBytes(pid: number): Promise<number | undefined> {
  return statusBytes(pid, "VmHWM");
}

/** Resident set size now (VmRSS) of a process in bytes, or undefined if unreadable. */
export function rssBytes(pid: number): Promise<number | undefined> {
  return statusBytes(pid, "VmRSS");
}

/** A `kB` field of /proc/PID/status in bytes. */
async function statusBytes(pid: number, field: "VmHWM" | "VmRSS"): Promise<number | undefined> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const m = status.match(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m"));
    return m?.[1] === undefined ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Whether an executable exists at `path`. */
export async function hasExecutable(path: string): Promise<boolean> {
  try {
    const st = await Deno.stat(path);
    return st.isFile && (st.mode ?? 0o111) & 0o111 ? true : false;
  } catch {
    return false;
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
