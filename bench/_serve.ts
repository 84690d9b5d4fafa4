// Our own product under benchmark: a temp config and data dir, one user owning the bench
// domain, `serve` on port 0 (addresses read from its `event=listening` lines), and
// `fetch --once` against it. Each step reports failure as an error whose message says why,
// so a benchmark can print `n/a (reason)` while the product is still being built.

import { fetchmailRc } from "../tests/_helpers/fetchmail.ts";
import { peakRssBytes, runCommand, type RunResult, spawn, type Spawned, stop } from "./_proc.ts";

/** Project root (the directory holding main.ts). */
export const PROJECT_ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
/** V8 flags of `deno task start` and the compiled binaries (deno.json): what users run. */
export const V8_FLAGS = "--v8-flags=--max-semi-space-size=2,--heap-growing-percent=20,--expose-gc";
/**
 * The other flag of `deno task start`, the README's `deno run` of serve and the compiled binaries
 * beside the permissions. The README's `deno run` of fetch goes without it (start-up).
 */
export const NO_CODE_CACHE = "--no-code-cache";
/** User and password the benchmarks create (a throwaway in a temp data dir). */
export const BENCH_USER = "bench";
export const BENCH_PASSWORD = "bench-secret-1";

/** Options for `Serve.start`. */
export interface ServeOptions {
  /** Temp dir owned by the caller; the instance lives in a subdirectory. */
  readonly dir: string;
  /** Domain the bench user owns. */
  readonly domain: string;
  /** Subdirectory name under `dir` (default "serve"). */
  readonly name?: string;
  /** Certificate and key: sets the config's `tls` section (STARTTLS, implicit listeners). */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** The one ODMR listener entry, as YAML flow (default `"127.0.0.1:0"`). */
  readonly odmrListen?: string;
  /** A `queue:` section as YAML (e.g. the PostgreSQL backend); default none (SQLite). */
  readonly queueYaml?: string;
  /** Further top-level sections as YAML (e.g. `outbound:`). */
  readonly extraYaml?: string;
  /**
   * Start serve through bench/_heap_probe.ts, which writes Deno.memoryUsage() to this file
   * every 250 ms (read it with readHeapSamples).
   */
  readonly heapProbe?: string;
  /** Replaces V8_FLAGS in serve's `deno run` (probes of other V8 flags). */
  readonly v8Flags?: string;
}

/** A running `serve` with one user. */
export class Serve {
  readonly root: string;
  readonly configPath: string;
  readonly smtpPort: number;
  /** Undefined when serve did not report an ODMR listener. */
  readonly odmrPort: number | undefined;
  /**
   * When serve logged `event=ready` (ms since the epoch, the line's own timestamp): its
   * listeners and workers had started. Undefined if the line did not come.
   */
  readonly readyAtMs: number | undefined;
  readonly #proc: Spawned;

  constructor(
    root: string,
    proc: Spawned,
    ports: { smtp: number; odmr: number | undefined },
    readyAtMs: number | undefined,
  ) {
    this.root = root;
    this.configPath = `${root}/config.yaml`;
    this.#proc = proc;
    this.smtpPort = ports.smtp;
    this.odmrPort = ports.odmr;
    this.readyAtMs = readyAtMs;
  }

  /** Writes the config, adds the user, starts serve and waits for its listening lines. */
  static async start(opts: ServeOptions): Promise<Serve> {
    const root = `${opts.dir}/${opts.name ?? "serve"}`;
    await Deno.mkdir(root, { recursive: true });
    const configPath = `${root}/config.yaml`;
    await Deno.writeTextFile(configPath, serveConfig(root, opts));
    const add = await odmrRelay(
      ["user", "add", BENCH_USER, "--domain", opts.domain, "--password-stdin"],
      configPath,
      { stdin: `${BENCH_PASSWORD}\n` },
    );
    if (add.code !== 0) throw new Error(`user add exited ${add.code}: ${lastLine(add.output)}`);
    const entry = opts.heapProbe === undefined ? "main.ts" : "bench/_heap_probe.ts";
    const proc = spawn("serve", Deno.execPath(), [
      "run",
      opts.v8Flags ?? V8_FLAGS,
      NO_CODE_CACHE,
      "-A",
      `${PROJECT_ROOT}/${entry}`,
      "serve",
      "--config",
      configPath,
    ], {
      cwd: root,
      ...(opts.heapProbe === undefined ? {} : { env: { ODMR_HEAP_PROBE: opts.heapProbe } }),
    });
    try {
      const smtp = await proc.waitForLine(/event=listening proto=smtp address=[^ ]*:(\d+)/, 30_000);
      // Both listeners are opened at start-up; give the ODMR line a moment after SMTP's.
      const odmr = await proc.waitForLine(/event=listening proto=odmr address=[^ ]*:(\d+)/, 2_000)
        .catch(() => undefined);
      // Read now, while the line is still among the last ones kept.
      const ready = await proc.waitForLine(/^(\S+) \w+ event=ready\b/, 5_000)
        .catch(() => undefined);
      const readyAtMs = ready === undefined ? undefined : Date.parse(ready[1] ?? "");
      return new Serve(
        root,
        proc,
        { smtp: Number(smtp[1]), odmr: odmr === undefined ? undefined : Number(odmr[1]) },
        readyAtMs === undefined || Number.isNaN(readyAtMs) ? undefined : readyAtMs,
      );
    } catch (e) {
      await stop(proc);
      throw new Error(`serve did not start: ${lastLine(proc.tail.join("\n")) || String(e)}`);
    }
  }

  /** PID of the serve process (`deno run` is the process itself). */
  get pid(): number {
    return this.#proc.pid;
  }

  /** Peak RSS (VmHWM) of serve so far, in bytes. */
  peakRss(): Promise<number | undefined> {
    return peakRssBytes(this.pid);
  }

  /** Messages waiting in the queue for `domain`, from `queue list --domain D --json`. */
  async queuedMessages(domain: string): Promise<number> {
    const r = await odmrRelay(["queue", "list", "--domain", domain, "--json"], this.configPath);
    if (r.code !== 0) throw new Error(`queue list exited ${r.code}: ${lastLine(r.output)}`);
    const start = r.output.indexOf("[");
    const parsed: unknown = JSON.parse(start < 0 ? r.output : r.output.slice(start));
    if (!Array.isArray(parsed)) throw new Error("queue list --json did not print an array");
    return parsed.length;
  }

  /** Writes a fetch config for this server and runs `fetch --once` (timed, wall clock). */
  async fetchOnce(
    opts: {
      domain: string;
      deliverTo: string;
      timeoutMs: number;
      sampleRss?: boolean;
      tls?: "none" | "implicit" | "starttls";
      ca?: string;
      /** Host name fetch connects to (default 127.0.0.1). */
      host?: string;
    },
  ): Promise<RunResult> {
    if (this.odmrPort === undefined) throw new Error("serve reported no ODMR listener");
    const passwordFile = `${this.root}/fetch.password`;
    await Deno.writeTextFile(passwordFile, `${BENCH_PASSWORD}\n`, { mode: 0o600 });
    await Deno.chmod(passwordFile, 0o600);
    const configPath = `${this.root}/fetch.yaml`;
    await Deno.writeTextFile(
      configPath,
      `# bench/_serve.ts: fetch side
data_dir: ${this.root}/fetch-data
log:
  level: warn
smtp:
  max_message_size: 100MB
fetch:
  server: ${opts.host ?? "127.0.0.1"}:${this.odmrPort}
  tls: ${opts.tls ?? "none"}
${opts.ca === undefined ? "" : `  ca: ${opts.ca}\n`}  user: ${BENCH_USER}
  password_file: ${passwordFile}
  domains: [${opts.domain}]
  deliver_to: ${opts.deliverTo}
`,
    );
    return odmrRelay(["fetch", "--once"], configPath, {
      timeoutMs: opts.timeoutMs,
      sampleRss: opts.sampleRss ?? false,
      codeCache: true,
    });
  }

  /** Writes a fetchmail rc for this server's ODMR port; returns its path. */
  async fetchmailRc(
    opts: { domain: string; smtpHostPort: number; ssl?: boolean },
  ): Promise<string> {
    if (this.odmrPort === undefined) throw new Error("serve reported no ODMR listener");
    const rc = `${this.root}/fetchmailrc`;
    await Deno.writeTextFile(
      rc,
      fetchmailRc({
        port: this.odmrPort,
        smtpPort: opts.smtpHostPort,
        user: BENCH_USER,
        password: BENCH_PASSWORD,
        domains: [opts.domain],
        ...(opts.ssl === true ? { ssl: "unverified" as const } : {}),
      }),
      { mode: 0o600 },
    );
    await Deno.chmod(rc, 0o600);
    return rc;
  }

  /** Stops serve (SIGTERM, then SIGKILL after 10 s). */
  stop(): Promise<void> {
    return stop(this.#proc, 10_000);
  }

  /** Last lines serve printed. */
  tail(): string {
    return this.#proc.tail.join("\n");
  }
}

/**
 * Runs `deno run -A main.ts ARGS --config F` under a deadline, with `--no-code-cache` unless
 * `codeCache` (as the README runs fetch).
 */
export function odmrRelay(
  args: string[],
  configPath: string,
  opts: { stdin?: string; timeoutMs?: number; sampleRss?: boolean; codeCache?: boolean } = {},
): Promise<RunResult> {
  return runCommand(
    Deno.execPath(),
    [
      "run",
      V8_FLAGS,
      ...(opts.codeCache === true ? [] : [NO_CODE_CACHE]),
      "-A",
      `${PROJECT_ROOT}/main.ts`,
      ...args,
      "--config",
      configPath,
    ],
    opts.timeoutMs ?? 60_000,
    {
      ...(opts.stdin === undefined ? {} : { stdin: opts.stdin }),
      sampleRss: opts.sampleRss ?? false,
    },
  );
}

function serveConfig(root: string, opts: ServeOptions): string {
  // Limits raised so that 50 parallel sessions and a 50 MB message are not refused; the
  // benchmark measures throughput, not the limits. Log level info: the `listening` lines
  // that give the ports are info events.
  const tls = opts.tls === undefined
    ? ""
    : `tls:\n  cert: ${opts.tls.cert}\n  key: ${opts.tls.key}\n`;
  return `# bench/_serve.ts: serve side
data_dir: ${root}/data
log:
  level: info
  format: text
${tls}smtp:
  listen: ["127.0.0.1:0"]
  max_message_size: 100MB
  max_recipients: 100
  max_connections: 1000
  max_connections_per_ip: 1000
odmr:
  listen: [${opts.odmrListen ?? `"127.0.0.1:0"`}]
${opts.queueYaml ?? ""}${opts.extraYaml ?? ""}`;
}

/** The last non-empty line of a command's output, without ANSI colours. */
export function lastLine(output: string): string {
  // deno-lint-ignore no-control-regex
  const lines = output.replace(/\x1b\[[0-9;]*m/g, "").split("\n").map((l) => l.trim())
    .filter((l) =>
      l !== "" && !l.startsWith("at ") && !/^\d+: /.test(l) && l !== "Stack backtrace:"
    );
  return lines.slice(-1)[0] ?? "";
}
