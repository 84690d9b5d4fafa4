/**
 * A private PostgreSQL cluster for tests: `initdb` and `pg_ctl` from Debian's postgresql
 * package on a temp directory and a free 127.0.0.1 port, run as the `postgres` user when the
 * tests run as root (the server refuses root), removed afterwards. Without the package a test
 * is skipped with a printed reason, and fails under CI=true (tests/_helpers/tools.ts).
 */
import { tcpListeners } from "./listeners.ts";
import { isCi } from "./tools.ts";

const BIN_ROOT = "/usr/lib/postgresql";

/** The directory holding initdb and pg_ctl of the newest installed version, or undefined. */
export async function findPostgresBin(): Promise<string | undefined> {
  const versions: number[] = [];
  try {
    for await (const e of Deno.readDir(BIN_ROOT)) {
      if (e.isDirectory && /^\d+$/.test(e.name)) versions.push(Number(e.name));
    }
  } catch {
    return undefined;
  }
  for (const v of versions.sort((a, b) => b - a)) {
    const bin = `${BIN_ROOT}/${v}/bin`;
    try {
      await Deno.stat(`${bin}/initdb`);
      await Deno.stat(`${bin}/pg_ctl`);
      return bin;
    } catch {
      // incomplete install of this version
    }
  }
  return undefined;
}

/** A running private cluster. */
export interface PostgresCluster {
  readonly port: number;
  /** `postgres://odmr@127.0.0.1:PORT/DB` (trust authentication on 127.0.0.1 only). */
  url(db?: string): string;
  /** Creates a fresh database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server (fast shutdown) and removes the directory. */
  stop(): Promise<void>;
  /**
   * Stops the server, keeping the data (`start()` again): `-m immediate` (a crash, the
   * default) or `-m fast` (an operator's restart: sessions are ended, then a clean shutdown).
   */
  kill(mode?: "immediate" | "fast"): Promise<void>;
  /**
   * Starts it again on the same port; fails (saying so) when another process took the port
   * meanwhile: the clients' URLs name it, so no other can be picked under them.
   */
  start(): Promise<void>;
  /** `pg_ctl restart -m fast`: sessions ended, clean shutdown, started again at once. */
  restart(): Promise<void>;
}

/** Registers a test that needs PostgreSQL; skipped (printed) without it, failing under CI. */
export async function postgresTest(
  name: string,
  fn: (pg: PostgresCluster, t: Deno.TestContext) => Promise<void>,
): Promise<void> {
  const bin = await findPostgresBin();
  const ignore = bin === undefined && !isCi();
  if (ignore) {
    // deno-lint-ignore no-console -- the printed reason is the point of a skip
    console.log(`skip: ${name}: PostgreSQL (initdb, pg_ctl in ${BIN_ROOT}/*/bin) not installed`);
  }
  Deno.test({
    name,
    ignore,
    // npm:postgres keeps a timer per pool until end(); each test ends its pools.
    fn: async (t) => {
      if (bin === undefined) {
        throw new Error("PostgreSQL not installed, and CI=true forbids skipping: see .ci/run");
      }
      const pg = await startCluster(bin);
      try {
        await fn(pg, t);
      } finally {
        await pg.stop();
      }
    },
  });
}

async function run(cmd: string, args: string[], asPostgres: boolean): Promise<string> {
  const full = asPostgres ? ["runuser", "-u", "postgres", "--", cmd, ...args] : [cmd, ...args];
  const out = await new Deno.Command(full[0] ?? cmd, {
    args: full.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${text.trim()}`);
  return text;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Nothing listens on 127.0.0.1:`port` (nor on all addresses). `start()` after `kill()` starts
 * on the same port, which the clients' URLs name: another process may have taken it while the
 * cluster was down (it was free to), and the test's clients would then reach that process.
 * The test fails with the reason instead (it cannot pick another port under its clients).
 */
async function assertPortFree(port: number): Promise<void> {
  if (port === 0) return;
  const taken = ((await tcpListeners("127.0.0.1", port)) ?? 0) +
    ((await tcpListeners("0.0.0.0", port)) ?? 0);
  if (taken > 0) {
    throw new Error(`127.0.0.1:${port} is taken by another process (${taken} listening)`);
  }
}

/** The cluster alone listens on 127.0.0.1:`port` (PostgreSQL sets no SO_REUSEPORT). */
async function assertOnlyListener(port: number): Promise<void> {
  const ours = await tcpListeners("127.0.0.1", port);
  const wildcard = await tcpListeners("0.0.0.0", port);
  if (ours === undefined || wildcard === undefined) return; // /proc cannot tell
  if (ours !== 1 || wildcard !== 0) {
    throw new Error(
      `PostgreSQL is not alone on 127.0.0.1:${port}: ${ours} there, ${wildcard} on 0.0.0.0`,
    );
  }
}

/** initdb + pg_ctl start on a temp dir and a free port. */
export async function startCluster(bin: string): Promise<PostgresCluster> {
  const asPostgres = Deno.uid() === 0;
  const dir = await Deno.makeTempDir({ prefix: "odmr-pg-" });
  if (asPostgres) await run("chown", ["postgres:", dir], false);
  const data = `${dir}/data`;
  await run(`${bin}/initdb`, [
    "-D",
    data,
    "-U",
    "odmr",
    "--auth=trust",
    "-E",
    "UTF8",
    "--no-locale",
  ], asPostgres);
  let port = 0;
  const stopWith = (mode: string) =>
    run(`${bin}/pg_ctl`, ["-D", data, "-w", "-m", mode, "stop"], asPostgres);
  const start = async () => {
    await assertPortFree(port);
    await run(`${bin}/pg_ctl`, [
      "-D",
      data,
      "-l",
      `${dir}/server.log`,
      "-w",
      "-t",
      "30",
      "-o",
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`,
      "start",
    ], asPostgres);
    try {
      await assertOnlyListener(port);
    } catch (err) {
      await stopWith("immediate").catch(() => {});
      throw err;
    }
  };
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    port = freePort();
    try {
      await start();
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err; // the port was taken in between, or is shared: try another
    }
  }
  if (lastError !== undefined) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw lastError;
  }
  const url = (db = "postgres") => `postgres://odmr@127.0.0.1:${port}/${db}`;
  let isRunning = true;
  return {
    port,
    url,
    async createDatabase(name: string) {
      await run(`${bin}/../bin/psql`, [
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-U",
        "odmr",
        "-d",
        "postgres",
        "-qc",
        `CREATE DATABASE "${name}"`,
      ], false);
      return url(name);
    },
    async stop() {
      if (isRunning) await stopWith("fast").catch(() => {});
      isRunning = false;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    async kill(mode = "immediate") {
      await stopWith(mode);
      isRunning = false;
    },
    async start() {
      await start();
      isRunning = true;
    },
    async restart() {
      // The server options come back from postmaster.opts; the log file must be given again.
      await run(
        `${bin}/pg_ctl`,
        ["-D", data, "-l", `${dir}/server.log`, "-w", "-t", "30", "-m", "fast", "restart"],
        asPostgres,
      );
      isRunning = true;
      await assertOnlyListener(port);
    },
  };
}
