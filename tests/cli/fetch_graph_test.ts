/**
 * Issue 13 (fetch start-up): each `node:` module costs `fetch --once` start-up time (Deno loads
 * and compiles its polyfill scripts before the first byte goes out). The modules `fetch` loads
 * before its ATRN — main.ts's static imports, then src/cli/fetch.ts's — must not pull in
 * node:crypto (the SCRAM client hashes with WebCrypto). Read from `deno info --json`: the static
 * import graph, as Deno loads it.
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { REPO_ROOT } from "../_helpers/server_process.ts";

interface InfoModule {
  readonly specifier: string;
  readonly dependencies?: readonly {
    readonly specifier: string;
    readonly isDynamic?: boolean;
    readonly code?: { readonly specifier?: string };
  }[];
}

/** The node: modules reachable from `roots` through static imports. */
async function staticNodeModules(
  roots: readonly string[],
  minModules = 40,
): Promise<Map<string, string[]>> {
  return (await staticGraph(roots, minModules)).users;
}

/** The modules reachable from `roots` through static imports, and which import each node: one. */
async function staticGraph(
  roots: readonly string[],
  minModules: number,
): Promise<{ seen: Set<string>; users: Map<string, string[]> }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `${REPO_ROOT}main.ts`],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const users = new Map<string, string[]>();
  const todo = roots.map((r) => new URL(r, `file://${REPO_ROOT}`).href);
  while (todo.length > 0) {
    const s = todo.pop() as string;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of bySpecifier.get(s)?.dependencies ?? []) {
      if (d.isDynamic === true) continue;
      const target = d.code?.specifier ?? d.specifier;
      if (target.startsWith("node:")) users.set(target, [...(users.get(target) ?? []), s]);
      else todo.push(target);
    }
  }
  ok(seen.size > minModules, `only ${seen.size} modules found: is the graph complete?`);
  return { seen, users };
}

Deno.test("(#13) fetch loads no node:crypto on its way to ATRN (static imports of main.ts and src/cli/fetch.ts)", async () => {
  const users = await staticNodeModules(["main.ts", "src/cli/fetch.ts"]);
  // Control: the graph is read (the connection needs node:net and node:tls).
  ok(users.has("node:net") && users.has("node:tls"), [...users.keys()].join(" "));
  assertEquals(users.get("node:crypto"), undefined);
});

Deno.test("(#13) main.ts's static imports (every command's start-up) load no node:util: serve and fetch parse their flags themselves", async () => {
  const { seen, users } = await staticGraph(["main.ts"], 15);
  // Control: the graph is read (the config loader and its validator are in it).
  ok([...seen].some((s) => s.endsWith("/src/config/_validator.ts")), [...seen].join(" "));
  assertEquals(users.get("node:util"), undefined);
});

Deno.test("(#13) main.ts's static imports do not load the yaml package: a plain config is read without it", async () => {
  const { seen } = await staticGraph(["main.ts"], 15);
  const yaml = [...seen].filter((s) => s.includes("/vendor/yaml/"));
  // Control: the config loader is in the graph.
  ok([...seen].some((s) => s.endsWith("/src/config/load.ts")));
  assertEquals(yaml, []);
});
