/**
 * Runs the real program for e2e tests: `deno run -A main.ts serve` with a temp config on
 * port 0, found through its `listening` log lines (no sleeps, a bounded deadline), stopped
 * with SIGTERM or killed with SIGKILL by PID. Also runs one-shot CLI commands (`user`, `queue`).
 */
import YAML from "yaml";
import { makeTestCa } from "./certs.ts";
import type { TestCa } from "./certs.ts";

/** The repository root (cwd of every spawned process). */
export const REPO_ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = `${REPO_ROOT}main.ts`;
const START_DEADLINE_MS = 30_000;
const STOP_DEADLINE_MS = 20_000;

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** One `listening` event. */
export interface ListeningEvent extends HostPort {
  readonly proto: string;
  readonly address: string;
  readonly tls: string;
}

/** A running `serve` process. */
export interface ServerProcess {
  readonly smtp: readonly ListeningEvent[];
  readonly odmr: readonly ListeningEvent[];
  readonly listening: readonly ListeningEvent[];
  readonly pid: number;
  readonly dataDir: string;
  readonly configPath: string;
  /** Everything the process wrote to stderr and stdout so far. */
  logs(): string;
  /** SIGTERM, then waits for exit; returns the exit code. */
  stop(): Promise<number>;
  /** Waits for the process to end by itself (a failed start); returns the exit code. */
  exited(): Promise<number>;
  /** SIGKILL (a crash), then waits for exit. */
  kill9(): Promise<void>;
}

/** Options of `startServer`. */
export interface StartServerOptions {
  /**
   * A config object (merged over: loopback port 0 listeners, `hostname: mx.test`, the data
   * dir) or complete YAML text (used as is; give it `data_dir` yourself).
   */
  readonly config?: Record<string, unknown> | string;
  /** Reuse a data dir (restart tests); default a fresh temp dir. */
  readonly dataDir?: string;
  /** Where to write the config; default `<dataDir>.config.yaml`. */
  readonly configPath?: string;
  /** Deno permission flags of the serve process; default `-A`. */
  readonly denoFlags?: readonly string[];
  /** The log line `startServer` waits for; default the `ready` event. */
  readonly until?: RegExp;
  /**
   * A command that runs deno (its arguments follow), e.g. `["prlimit", "--nofile=128", "--"]`:
   * it must exec deno, so that the PID is serve's.
   */
  readonly prefix?: readonly string[];
}

/** Writes the config for a test server: returns its path and the data dir. */
export async function writeTestConfig(
  opts: StartServerOptions = {},
): Promise<{ configPath: string; dataDir: string }> {
  const dataDir = opts.dataDir ?? await Deno.makeTempDir({ prefix: "odmr-e2e-" });
  const configPath = opts.configPath ?? `${dataDir}.config.yaml`;
  let text: string;
  if (typeof opts.config === "string") {
    text = opts.config;
  } else {
    const given = opts.config ?? {};
    const merged: Record<string, unknown> = {
      hostname: "mx.test",
      "data_dir": dataDir,
      ...given,
      smtp: { listen: ["127.0.0.1:0"], ...asRecord(given.smtp) },
      odmr: { listen: ["127.0.0.1:0"], ...asRecord(given.odmr) },
    };
    text = YAML.stringify(merged);
  }
  await Deno.writeTextFile(configPath, text);
  return { configPath, dataDir };
}

/** Starts `serve` and waits for all its listeners (or for `opts.until`). */
export async function startServer(opts: StartServerOptions = {}): Promise<ServerProcess> {
  const { configPath, dataDir } = await writeTestConfig(opts);
  const args = ["run", ...(opts.denoFlags ?? ["-A"]), MAIN, "serve", "--config", configPath];
  const [command, ...before] = [...(opts.prefix ?? []), Deno.execPath()];
  const child = new Deno.Command(command!, {
    args: [...before, ...args],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();

  let output = "";
  let notify: () => void = () => {};
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      output += decoder.decode(chunk, { stream: true });
      notify();
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => {
    exited = s;
    notify();
    return s;
  });

  const deadline = Date.now() + START_DEADLINE_MS;
  const until = opts.until ?? /event[=":]+ready\b/;
  while (!until.test(output)) {
    if (exited !== undefined) {
      await pumps;
      throw new Error(`serve exited with code ${exited.code} before it was ready:\n${output}`);
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      child.kill("SIGKILL");
      await status;
      await pumps;
      throw new Error(`serve was not ready within ${START_DEADLINE_MS} ms:\n${output}`);
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, left);
      notify = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  const listening = parseListening(output);
  const finish = async (signal: Deno.Signal): Promise<Deno.CommandStatus> => {
    if (exited === undefined) {
      try {
        child.kill(signal);
      } catch {
        // Already gone.
      }
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, STOP_DEADLINE_MS);
    try {
      const s = await status;
      await pumps;
      return s;
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    smtp: listening.filter((l) => l.proto === "smtp"),
    odmr: listening.filter((l) => l.proto === "odmr"),
    listening,
    pid: child.pid,
    dataDir,
    configPath,
    logs: () => output,
    stop: async () => (await finish("SIGTERM")).code,
    exited: async () => {
      const s = await status;
      await pumps;
      return s.code;
    },
    kill9: async () => {
      await finish("SIGKILL");
    },
  };
}

/** Parses `listening` events from text (`key=value`) or JSON log lines. */
export function parseListening(logs: string): ListeningEvent[] {
  const out: ListeningEvent[] = [];
  for (const line of logs.split("\n")) {
    let fields: Record<string, unknown> | undefined;
    if (line.startsWith("{")) {
      try {
        fields = asRecord(JSON.parse(line));
      } catch {
        continue;
      }
    } else if (line.includes("event=listening")) {
      fields = {};
      for (const m of line.matchAll(/(\w+)=(\S+)/g)) fields[m[1] as string] = m[2];
    }
    if (fields?.event !== "listening") continue;
    const address = String(fields.address);
    const m = /^\[?(.*?)\]?:(\d+)$/.exec(address);
    if (!m) continue;
    out.push({
      proto: String(fields.proto),
      address,
      tls: String(fields.tls),
      host: m[1] as string,
      port: Number(m[2]),
    });
  }
  return out;
}

/** Result of a one-shot CLI run. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `deno run -A main.ts ARGS` (optionally with stdin text and extra env; `denoFlags` instead
 * of `-A`); `signal` kills it (SIGTERM) when aborted, for a command that might never end.
 */
export async function runMain(
  args: readonly string[],
  opts: {
    stdin?: string;
    env?: Record<string, string>;
    cwd?: string;
    signal?: AbortSignal;
    denoFlags?: readonly string[];
  } = {},
): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...(opts.denoFlags ?? ["-A"]), MAIN, ...args],
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    cwd: opts.cwd ?? REPO_ROOT,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...opts.env },
  }).spawn();
  if (opts.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(opts.stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** Creates a user owning `domains` through the real CLI; throws with its output on failure. */
export async function addUser(
  configPath: string,
  name: string,
  domains: readonly string[],
  password = "secret-password",
): Promise<void> {
  const r = await runMain(
    [
      "user",
      "add",
      name,
      ...domains.flatMap((d) => ["--domain", d]),
      "--password-stdin",
      "--config",
      configPath,
    ],
    { stdin: `${password}\n` },
  );
  if (r.code !== 0) throw new Error(`user add failed (${r.code}):\n${r.stdout}${r.stderr}`);
}

/** `queue list --json` through the real CLI. */
export async function queueList(configPath: string, domain?: string): Promise<unknown> {
  const r = await runMain([
    "queue",
    "list",
    "--json",
    ...(domain === undefined ? [] : ["--domain", domain]),
    "--config",
    configPath,
  ]);
  if (r.code !== 0) throw new Error(`queue list failed (${r.code}):\n${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Removes a test's data dir and its config file. */
export async function removeTestFiles(server: { dataDir: string; configPath: string }) {
  await Deno.remove(server.dataDir, { recursive: true }).catch(() => {});
  await Deno.remove(server.configPath).catch(() => {});
}

/** A `serve` with a test CA's certificate, and how to stop it and remove its files. */
export interface TlsTestServer {
  readonly ca: TestCa;
  readonly server: ServerProcess;
  /** Stops the server (throwing, with its logs, unless it exits 0) and removes every file. */
  cleanup(): Promise<void>;
}

/**
 * Makes a test CA (openssl; the caller's toolTest names it) and starts `serve` with its
 * server certificate as `tls:`, `config` merged over it.
 */
export async function startTlsServer(config: Record<string, unknown>): Promise<TlsTestServer> {
  const ca = await makeTestCa();
  if (ca === undefined) throw new Error("openssl could not make the test CA");
  let server: ServerProcess;
  try {
    server = await startServer({
      config: { tls: { cert: ca.certPath, key: ca.keyPath }, ...config },
    });
  } catch (err) {
    await ca.cleanup();
    throw err;
  }
  const cleanup = async () => {
    try {
      const code = await server.stop();
      if (code !== 0) throw new Error(`serve exited with ${code}:\n${server.logs()}`);
    } finally {
      await removeTestFiles(server);
      await ca.cleanup();
    }
  };
  return { ca, server, cleanup };
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : {};
}
