/**
 * Child processes of the tests and the benchmarks (bench/_proc.ts re-exports this): started
 * with their output read line by line (the last lines kept for error messages, a line can be
 * waited for), registered so that `stopAll` stops every one still running, and stopped by
 * their own PID (SIGTERM, then SIGKILL after a grace).
 */

/** A child process started through `spawn`, with its output collected line by line. */
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

/** A loopback TCP port that was free a moment ago (bind to 0, read, close). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
