/**
 * Command-line dispatch: `--version`, `--help`, `COMMAND --help`, then one command with its
 * config loaded (README.md discovery order). Returns the exit code; never calls Deno.exit.
 * Usage and config errors are exit 2, named after the flag or the file and key path.
 */
import { ConfigError, loadConfig } from "../config/load.ts";
import type { Config, LogLevel } from "../config/types.ts";
import { PROGRAM_NAME, VERSION } from "../version.ts";
import { createCliIo } from "./_io.ts";
import { COMMAND_HELP, MAIN_HELP } from "./_help.ts";
import type { CommandName } from "./_help.ts";
import { flushLogLines, writeStderr } from "../observe/log.ts";
import { warmUpTlsCrypto } from "../net/tls_warm_up.ts";
import { type BooleanFlag, parseBooleanFlags } from "./_command_flags.ts";
import { serveConfigProblem } from "../config/serve_checks.ts";

const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;

/** What the CLI needs from its surroundings (tests pass their own). */
export interface CliEnvironment {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Runs one command line and returns its exit code. */
export async function runCli(
  argv: readonly string[],
  environment?: CliEnvironment,
): Promise<number> {
  const envir = environment ?? processEnvironment();
  try {
    return await runCommand(argv, envir);
  } catch (err) {
    // A grant left out of README "Permissions": Deno's message names the flag; no stack trace.
    if (!(err instanceof Deno.errors.NotCapable)) throw err;
    envir.stderr(`error: ${err.message}\n`);
    // check-config answers only "valid" (0) or "not" (2): one it could not check is not valid.
    return argv[0] === "check-config" ? EXIT_USAGE : EXIT_RUNTIME;
  }
}

async function runCommand(argv: readonly string[], envir: CliEnvironment): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    envir.stderr(MAIN_HELP);
    return EXIT_USAGE;
  }
  if (first === "--version" || first === "-V" || first === "version") {
    envir.stdout(`${PROGRAM_NAME} ${VERSION}\n`);
    return 0;
  }
  if (first === "--help" || first === "-h") {
    envir.stdout(MAIN_HELP);
    return 0;
  }
  if (first === "help") {
    const topic = rest[0];
    if (topic === undefined) {
      envir.stdout(MAIN_HELP);
      return 0;
    }
    if (!isCommand(topic)) return unknownCommand(topic, envir);
    envir.stdout(COMMAND_HELP[topic]);
    return 0;
  }
  if (!isCommand(first)) return unknownCommand(first, envir);
  if (rest.includes("--help") || rest.includes("-h")) {
    envir.stdout(COMMAND_HELP[first]);
    return 0;
  }

  const split = takeConfigFlag(rest);
  if (!split.ok) {
    envir.stderr(`error: ${split.message}\n`);
    return EXIT_USAGE;
  }
  let config: Config;
  try {
    config = await loadConfig({
      path: split.configPath,
      env: envir.env,
      cwd: envir.cwd,
      // user, queue and dkim only need data_dir: a missing certificate must not lock out the admin.
      checkFiles: first !== "user" && first !== "queue" && first !== "dkim",
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      envir.stderr(`error: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }

  switch (first) {
    case "serve": {
      const parsed = parseCommandFlags(split.rest, []);
      if (!parsed.ok) return usage(first, parsed.message, envir);
      const problem = serveConfigProblem(config);
      if (problem !== undefined) {
        envir.stderr(`error: ${new ConfigError(config.source, undefined, problem).message}\n`);
        return EXIT_USAGE;
      }
      const { serveCommand } = await import("./serve.ts");
      return await serveCommand(withLogLevel(config, parsed.logLevel), envir.stderr);
    }
    case "check-config": {
      if (split.rest.length > 0) {
        return usage(first, `Unexpected argument "${split.rest[0]}"`, envir);
      }
      const { checkConfigCommand } = await import("./check_config.ts");
      return checkConfigCommand(config, envir.stdout, envir.stderr);
    }
    case "fetch": {
      const parsed = parseCommandFlags(split.rest, [{ long: "once" }]);
      if (!parsed.ok) return usage(first, parsed.message, envir);
      // The crypto set-up of the first TLS handshake, on another thread while fetch's modules
      // load and it connects (src/net/tls_warm_up.ts).
      if (config.fetch !== undefined && config.fetch.tls !== "none") warmUpTlsCrypto();
      // A --once poll reads its files and connects before the rest of fetch's modules load
      // (src/odmr/customer_start.ts): the provider's greeting, and the round trips to a distant
      // one, come in meanwhile. A looping fetch starts each poll when it comes.
      const once = parsed.values.once === true;
      if (!once || config.fetch === undefined) {
        const { fetchCommand } = await import("./fetch.ts");
        return await fetchCommand(withLogLevel(config, parsed.logLevel), {
          once,
          stderr: envir.stderr,
        });
      }
      // SIGTERM/SIGINT stop fetch with exit 0 (README) also while it connects, before fetch.ts
      // is loaded and installs its own listeners: a connect cut short here just ends the run.
      const early = earlySignals();
      try {
        const start = await Promise.race([
          (await import("../odmr/customer_start.ts")).startPoll(config.fetch),
          early.stopped,
        ]);
        if (start === "stopped") return 0;
        const { fetchCommand } = await import("./fetch.ts");
        return await fetchCommand(withLogLevel(config, parsed.logLevel), {
          once,
          stderr: envir.stderr,
          start,
          controller: early.controller,
          onSignalsTaken: early.release,
        });
      } finally {
        early.release();
      }
    }
    case "user": {
      const { userCommand } = await import("./user.ts");
      return await userCommand([...split.rest], createCliIo(config.dataDir, envir, config.queue));
    }
    case "queue": {
      const { queueCommand } = await import("./queue.ts");
      return await queueCommand([...split.rest], createCliIo(config.dataDir, envir, config.queue));
    }
    case "dkim": {
      const { dkimCommand } = await import("./dkim.ts");
      return await dkimCommand([...split.rest], createCliIo(config.dataDir, envir, config.queue));
    }
    default: {
      const never: never = first;
      return never;
    }
  }
}

/**
 * SIGTERM/SIGINT listeners for the time before fetch.ts installs its own: they abort
 * `controller` (which fetch then goes on with) and settle `stopped`. `release` removes them.
 */
function earlySignals(): {
  controller: AbortController;
  stopped: Promise<"stopped">;
  release: () => void;
} {
  const controller = new AbortController();
  let onStop: (v: "stopped") => void = () => {};
  const stopped = new Promise<"stopped">((resolve) => onStop = resolve);
  const onSignal = () => {
    controller.abort();
    onStop("stopped");
  };
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGINT", onSignal);
  };
  return { controller, stopped, release };
}

/**
 * Parses the flags of serve/fetch: `extra` plus `-v`/`--verbose` (debug) and `-q`/`--quiet`
 * (warn), which override log.level and exclude each other.
 */
function parseCommandFlags(
  args: readonly string[],
  extra: readonly BooleanFlag[],
):
  | { ok: true; values: Readonly<Record<string, true>>; logLevel: LogLevel | undefined }
  | { ok: false; message: string } {
  const parsed = parseBooleanFlags(args, [
    ...extra,
    { long: "verbose", short: "v" },
    { long: "quiet", short: "q" },
  ]);
  if (!parsed.ok) return parsed;
  const values = parsed.values;
  if (values.verbose === true && values.quiet === true) {
    return { ok: false, message: `"--verbose" and "--quiet" exclude each other` };
  }
  const logLevel = values.verbose === true ? "debug" : values.quiet === true ? "warn" : undefined;
  return { ok: true, values, logLevel };
}

function withLogLevel(config: Config, level: LogLevel | undefined): Config {
  return level === undefined ? config : { ...config, log: { ...config.log, level } };
}

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMAND_HELP, name);
}

function unknownCommand(name: string, envir: CliEnvironment): number {
  envir.stderr(
    `error: Unknown command "${name}": run "${PROGRAM_NAME} --help" for the list of commands\n`,
  );
  return EXIT_USAGE;
}

function usage(command: CommandName, message: string, envir: CliEnvironment): number {
  envir.stderr(
    `error: ${message}: run "${PROGRAM_NAME} ${command} --help" for usage\n`,
  );
  return EXIT_USAGE;
}

/** Removes `--config F` / `--config=F` (every command takes it) and returns the rest. */
export function takeConfigFlag(
  args: readonly string[],
):
  | { ok: true; configPath: string | undefined; rest: string[] }
  | { ok: false; message: string } {
  let configPath: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--") {
      rest.push(...args.slice(i));
      break;
    }
    let value: string | undefined;
    if (arg === "--config" || arg === "-c") {
      value = args[i + 1];
      i++;
      if (value === undefined || value === "") {
        return { ok: false, message: `Missing value for "${arg}": expected a file name` };
      }
    } else if (arg.startsWith("--config=")) {
      value = arg.slice("--config=".length);
      if (value === "") {
        return { ok: false, message: `Missing value for "--config": expected a file name` };
      }
    } else {
      rest.push(arg);
      continue;
    }
    if (configPath !== undefined) {
      return { ok: false, message: `"--config" given twice` };
    }
    configPath = value;
  }
  return { ok: true, configPath, rest };
}

function processEnvironment(): CliEnvironment {
  const encoder = new TextEncoder();
  let isStdoutClosed = false;
  return {
    env: {
      // Only the variable the CLI reads: no blanket --allow-env needed. Read when the config is
      // looked for, so that a missing --allow-env is reported like any missing grant.
      get ODMR_RELAY_CONFIG() {
        return Deno.env.get("ODMR_RELAY_CONFIG");
      },
    },
    cwd: Deno.cwd(),
    stdout: (text) => {
      if (isStdoutClosed) return;
      try {
        writeAll(Deno.stdout, encoder.encode(text));
      } catch (err) {
        // `odmr-relay … | head`: the reader has what it wanted; the command ends as it would
        // have (its exit code), like `queue show --body`, without a trace or a false error.
        if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
        isStdoutClosed = true;
      }
    },
    stderr: (text) => {
      // Log lines still waiting to be written come first, as they were logged.
      flushLogLines();
      writeStderr(encoder.encode(text));
    },
  };
}

function writeAll(target: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += target.writeSync(bytes.subarray(offset));
}
