/**
 * README.md's config table (section "Configuration") names every key the loader accepts, from
 * the loader's own lists of known keys: a key added to the code and left out of the table is
 * found here. Per-domain entries (`domains`) and listen entries are named by their section.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { knownKeys } from "./_known_keys.ts";
import { REPO_ROOT } from "../_helpers/server_process.ts";

/** The `backticked` names in the first column of the README's config table. */
async function tableKeys(): Promise<Set<string>> {
  const readme = await Deno.readTextFile(`${REPO_ROOT}README.md`);
  const start = readme.search(/^\| key +\| default +\| meaning +\|$/m);
  const rows = readme.slice(start).split("\n\n")[0]?.split("\n").slice(2) ?? [];
  const keys = rows.flatMap((row) => {
    const first = row.split("|")[1] ?? "";
    return [...first.matchAll(/`([a-z_.]+)`/g)].map((m) => m[1] as string);
  });
  return new Set(keys);
}

Deno.test("README's config table names every key the config accepts", async () => {
  const table = await tableKeys();
  const known = knownKeys();
  assertEquals(known.length > 40, true, known.join(" "));
  assertEquals(known.filter((k) => !table.has(k)), []);
  assertEquals([...table].filter((k) => !known.includes(k)), [], "keys the config refuses");
});
