/**
 * Issue 13 (idle memory): `serve` with the embedded defaults (SQLite, no `metrics:`) loads
 * neither prom-client nor postgres.js. Each test runs the real program with a deno.json whose
 * import map points both at a module that throws when it is evaluated: a static import (or an
 * unconditional import()) of either makes serve fail to start. The controls show the map is
 * in effect: where the module is needed, the throw does come.
 */
import { equal, match, ok } from "node:assert/strict";
import { REPO_ROOT, startServer } from "../_helpers/server_process.ts";

const TRAP = "odmr-relay test: this module was loaded";

/** A deno.json like the repository's, with prom-client and postgres.js as traps. */
async function trapConfig(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "odmr-lazy-" });
  const repo = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)) as {
    imports: Record<string, string>;
  };
  await Deno.writeTextFile(
    `${dir}/trap.js`,
    `throw new Error(${JSON.stringify(TRAP)});\nexport default undefined;\n`,
  );
  const imports = {
    ...repo.imports,
    "prom-client": `file://${dir}/trap.js`,
    "postgres": `file://${dir}/trap.js`,
  };
  await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify({ imports }));
  return `${dir}/deno.json`;
}

function flags(config: string): string[] {
  return ["-A", "--no-lock", "--config", config];
}

Deno.test("(#13) serve with the embedded defaults loads neither prom-client nor postgres.js", async () => {
  const config = await trapConfig();
  const server = await startServer({ denoFlags: flags(config) });
  try {
    ok(server.smtp.length > 0, server.logs());
    ok(!server.logs().includes(TRAP), server.logs());
  } finally {
    await server.stop();
  }
  // Control: with `metrics:` set, serve does load prom-client and trips over the trap.
  const metrics = await startServer({
    denoFlags: flags(config),
    config: { metrics: { listen: "127.0.0.1:0" } },
  }).then(
    (s) => s.stop().then(() => "started"),
    (e: Error) => e.message,
  );
  match(metrics, /was loaded|does not provide an export/);
});

Deno.test("(#13) the user and queue commands on SQLite do not load postgres.js; queue migrate does", async () => {
  const config = await trapConfig();
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
