/**
 * config.example.yaml says it shows "every key, with its default", some of them as comments
 * (sections that are off by default). With those comments made keys again it still loads, so
 * every key it shows exists and every value it shows is valid, and it names every key the
 * loader accepts: a key added to the code and left out of the example is found here.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import YAML from "yaml";
import { parseConfig } from "../../src/config/parse.ts";
import { CONFIG_BASE } from "./_parse.ts";
import { knownKeys } from "./_known_keys.ts";

/** Names a commented-out line may start with: the loader's keys, a quota's, a domain. */
const NAMES = new Set([...knownKeys().flatMap((k) => k.split(".")), "bytes", "messages"]);

/**
 * The example with each commented-out key line (`#   key: value`, a key the loader knows or a
 * domain name) made a key line again; prose comments (`# true: ...`) stay comments.
 */
async function exampleUncommented(): Promise<string> {
  const text = await Deno.readTextFile(new URL("../../config.example.yaml", import.meta.url));
  return text.split("\n").map((line) => {
    const m = /^(\s*)# ( *)([a-z_][a-z0-9_.-]*)(:(?: |$).*)$/.exec(line);
    if (m === null || !(NAMES.has(m[3] as string) || m[3]?.includes("."))) return line;
    return `${m[1]}${m[2]}${m[3]}${m[4]}`;
  }).join("\n");
}

/** Every key path of a YAML mapping, nested mappings walked (`queue.postgres.url`). */
function keyPaths(value: unknown, prefix = ""): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const path = prefix === "" ? k : `${prefix}.${k}`;
    return [path, ...keyPaths(v, path)];
  });
}

Deno.test("config.example.yaml, its commented keys included, loads and names every key", async () => {
  const text = await exampleUncommented();
  const c = parseConfig(text, { ...CONFIG_BASE, source: "config.example.yaml (uncommented)" });
  assertEquals(c.submission !== undefined && c.outbound !== undefined, true);
  const shown = new Set(keyPaths(YAML.parse(text)));
  assertEquals(knownKeys().filter((k) => !shown.has(k)), [], "keys missing from the example");
});
