// Process helpers for the benchmarks: spawn with a registry so run.ts can stop every process
// it started (by PID, even on failure; tests/_helpers/spawned.ts, shared with the tests), run a
// command to completion under a deadline, find a spare loopback port, and read a process's
// RSS and CPU time. Benchmarks only; no test imports this.

export {
  freePort,
  spawn,
  type Spawned,
  type SpawnOptions,
  stop,
  stopAll,
} from "../tests/_helpers/spawned.ts";
import { spawn, type SpawnOptions, stop } from "../tests/_helpers/spawned.ts";

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

/**
 * User + system CPU time so far in ms (Linux clock ticks of 10 ms) of a process, or of one of
 * its threads with `tid` (the main thread's is the process's own PID).
 */
export async function cpuMs(pid: number, tid?: number): Promise<number> {
  const path = tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
  const fields = (await Deno.readTextFile(path)).split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
