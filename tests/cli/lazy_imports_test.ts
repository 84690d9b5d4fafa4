/**
 * Issue 13 (idle memory): `serve` with the embedded defaults (SQLite, no `metrics:`) loads
 * neither prom-client nor postgres.js, nor the other commands. Its own session handlers and the
 * outbound delivery it does load at start-up: loaded at first use, they would be read from disk
 * hours later (a checkout changed since start mixes versions, and outside `--allow-read` the
 * first MX connection crashes), so a broken install fails at start instead. Each test runs the real program with a deno.json whose
 * import map points those at a module that throws when it is evaluated (an import map also
 * remaps our own files by their URL): a static import (or an unconditional import()) of one
 * makes serve fail to start or log the trap. The controls show the map is in effect: where
 * the module is needed, the throw does come.
 */
import { equal, match, ok } from "node:assert/strict";
import { REPO_ROOT, startServer } from "../_helpers/server_process.ts";
import { until } from "../_helpers/wait_until.ts";

const TRAP = "odmr-relay test: this module was loaded";
/** What a trapped module gives its importer: its own throw, or a missing named export. */
const TRAPPED = /was loaded|does not provide an export/;

/** Our modules that `serve` loads at start-up (relative to the repository root). */
const SERVE_AT_START = [
  "src/smtp/receiver.ts",
  "src/odmr/provider.ts",
  "src/outbound/_batch.ts",
];
/** The commands other than `serve`. */
const OTHER_COMMANDS = ["fetch", "user", "queue", "dkim", "check_config"].map((c) =>
  `src/cli/${c}.ts`
);

/**
 * A deno.json like the repository's, with prom-client, postgres.js, `ownFiles` (paths
 * relative to the repository root) and `builtins` (such as `node:dgram`) as traps.
 */
async function trapConfig(
  ownFiles: readonly string[] = [],
  builtins: readonly string[] = [],
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "odmr-lazy-" });
  const repo = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)) as {
    imports: Record<string, string>;
  };
  await Deno.writeTextFile(
    `${dir}/trap.js`,
    `throw new Error(${JSON.stringify(TRAP)});\nexport default undefined;\n`,
  );
  // The relative targets (./vendor/…) resolve beside this deno.json: a copy of vendor/. (Mapped
  // into the repository instead, Deno would also apply the repository's deno.json there.)
  const copy = await new Deno.Command("cp", { args: ["-r", `${REPO_ROOT}vendor`, dir] }).output();
  if (!copy.success) throw new Error(new TextDecoder().decode(copy.stderr));
  const imports = {
    ...repo.imports,
    "prom-client": `file://${dir}/trap.js`,
    "postgres": `file://${dir}/trap.js`,
    ...Object.fromEntries(
      ownFiles.map((f) => [new URL(f, `file://${REPO_ROOT}`).href, `file://${dir}/trap.js`]),
    ),
    ...Object.fromEntries(builtins.map((b) => [b, `file://${dir}/trap.js`])),
  };
  await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify({ imports }));
  return `${dir}/deno.json`;
}

function flags(config: string): string[] {
  return ["-A", "--no-lock", "--config", config];
}

/**
 * Starts `serve` on the trap config `trap` (embedded defaults), checks it listens, stops it
 * (exit 0) and asserts that no trapped module was loaded: its logs are read after the exit, so
 * the outbound worker's first look at the queue is in them too.
 */
async function idleServeLoadsNoTrap(trap: string): Promise<void> {
  const server = await startServer({ denoFlags: flags(trap) });
  try {
    ok(server.smtp.length > 0 && server.odmr.length > 0, server.logs());
  } finally {
    equal(await server.stop(), 0, server.logs());
  }
  ok(!TRAPPED.test(server.logs()), server.logs());
}

/** "started" when `serve` starts on the trap config `trap` (and `config`), else why not. */
function serveOutcome(trap: string, config?: Record<string, unknown>): Promise<string> {
  return startServer({ denoFlags: flags(trap), ...(config === undefined ? {} : { config }) }).then(
    (s) => s.stop().then(() => "started"),
    (e: Error) => e.message,
  );
}

Deno.test("(#13) serve with the embedded defaults loads neither prom-client nor postgres.js, nor the other commands", async () => {
  const config = await trapConfig(OTHER_COMMANDS);
  await idleServeLoadsNoTrap(config);
  // Control: with `metrics:` set, serve does load prom-client and trips over the trap.
  match(await serveOutcome(config, { metrics: { listen: "127.0.0.1:0" } }), TRAPPED);
});

Deno.test("(#13) serve does not load node:dgram while idle; the first DNS re-query of the outbound worker does", async () => {
  const config = await trapConfig([], ["node:dgram"]);
  await idleServeLoadsNoTrap(config);
  // Control: asking a name server for the RCODE (src/outbound/dns_rcode.ts) loads it.
  const script = `${config.replace(/deno\.json$/, "")}rcode.ts`;
  await Deno.writeTextFile(
    script,
    `import { queryRcode } from ${JSON.stringify(`${REPO_ROOT}src/outbound/dns_rcode.ts`)};\n` +
      `await queryRcode("example.invalid", "A", { ipAddr: "127.0.0.1", port: 9 }, 200);\n`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags(config), script],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stderr);
  ok(!out.success, text);
  match(text, TRAPPED);
});

Deno.test("(#13) serve with the embedded defaults does not load node:path or node:url while idle", async () => {
  const config = await trapConfig([], ["node:path", "node:url"]);
  const server = await startServer({ denoFlags: flags(config) });
  try {
    ok(server.smtp.length > 0 && server.odmr.length > 0, server.logs());
  } finally {
    equal(await server.stop(), 0, server.logs());
  }
  ok(!TRAPPED.test(server.logs()), server.logs());
  // Control: the map is in effect for these two.
  const script = `${config.replace(/deno\.json$/, "")}url.ts`;
  await Deno.writeTextFile(script, `import "node:path";\nimport "node:url";\n`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags(config), script],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stderr);
  ok(!out.success, text);
  match(text, TRAPPED);
});

Deno.test("(#13) serve without a tls section does not load node:crypto or node:buffer while idle; the first SCRAM AUTH does", async () => {
  const config = await trapConfig([], ["node:crypto", "node:buffer"]);
  const server = await startServer({ denoFlags: flags(config) });
  let conn: Deno.TcpConn | undefined;
  try {
    ok(server.smtp.length > 0 && server.odmr.length > 0, server.logs());
    ok(!TRAPPED.test(server.logs()), server.logs());
    // Control: an AUTH SCRAM-SHA-256 on the ODMR port loads node:crypto (and trips the trap).
    conn = await Deno.connect({ hostname: "127.0.0.1", port: server.odmr[0]!.port });
    const readUntil = async (re: RegExp) => {
      let text = "";
      const buf = new Uint8Array(4096);
      while (!re.test(text)) {
        const n = await conn!.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      return text;
    };
    await readUntil(/^220 /m);
    await conn.write(new TextEncoder().encode("EHLO client.test\r\n"));
    await readUntil(/^250 /m);
    await conn.write(
      new TextEncoder().encode(`AUTH SCRAM-SHA-256 ${btoa("n,,n=nobody,r=abc")}\r\n`),
    );
    await until("the AUTH to load node:crypto", () => TRAPPED.test(server.logs()));
  } finally {
    conn?.close();
    await server.stop();
  }
});

for (const file of SERVE_AT_START) {
  Deno.test(`(#13) serve loads ${file} at start-up, so a broken install fails there, not at the first use`, async () => {
    match(await serveOutcome(await trapConfig([file])), TRAPPED);
  });
}

Deno.test("(#13) the user and queue commands on SQLite load neither postgres.js nor the other commands; queue migrate loads postgres.js", async () => {
  const config = await trapConfig(
    ["serve", "fetch", "dkim", "check_config"].map((c) => `src/cli/${c}.ts`),
  );
  const dataDir = await Deno.makeTempDir({ prefix: "odmr-lazy-data-" });
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags(config), `${REPO_ROOT}main.ts`, ...args],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1", ODMR_RELAY_CONFIG: "" },
      stdin: "null",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
  };
  const cfg = `${dataDir}.yaml`;
  await Deno.writeTextFile(cfg, `data_dir: ${dataDir}\n`);
  const list = await run(["queue", "list", "--config", cfg]);
  equal(list.code, 0, list.text);
  const users = await run(["user", "list", "--config", cfg]);
  equal(users.code, 0, users.text);
  // Control: the migration names both backends and loads postgres.js.
  const migrate = await run([
    "queue",
    "migrate",
    "--to",
    "postgres://x@127.0.0.1/x",
    "--config",
    cfg,
  ]);
  ok(migrate.code !== 0, migrate.text);
  ok(migrate.text.includes(TRAP), migrate.text);
});

Deno.test("(#13) no npm package (CommonJS and Deno's require with it) is loaded before a command needs it", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `${REPO_ROOT}main.ts`],
    cwd: REPO_ROOT,
    stdout: "piped",
  }).output();
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: {
      specifier: string;
      dependencies?: { code?: { specifier?: string }; isDynamic?: boolean }[];
    }[];
  };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  // What main.ts loads at start: its static imports, transitively (import() is left out).
  const loaded = new Set<string>();
  const pending = [new URL("main.ts", `file://${REPO_ROOT}`).href];
  while (pending.length > 0) {
    const s = pending.pop() as string;
    if (loaded.has(s)) continue;
    loaded.add(s);
    for (const d of bySpecifier.get(s)?.dependencies ?? []) {
      if (d.isDynamic !== true && d.code?.specifier !== undefined) pending.push(d.code.specifier);
    }
  }
  ok(loaded.size > 10, `${loaded.size} modules`);
  ok(loaded.has(new URL("src/config/load.ts", `file://${REPO_ROOT}`).href), [...loaded].join("\n"));
  const npm = [...loaded].filter((s) => s.startsWith("npm:") || s.includes("/node_modules/"));
  equal(npm.join(", "), "");
});
