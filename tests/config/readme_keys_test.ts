/**
 * README.md's config table (section "Configuration") names every key the loader accepts, from
 * the loader's own lists of known keys: a key added to the code and left out of the table is
 * found here. Per-domain entries (`domains`) and listen entries are named by their section.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  LOG_KEYS,
  METRICS_KEYS,
  ODMR_KEYS,
  POSTGRES_KEYS,
  QUEUE_KEYS,
  SMTP_KEYS,
  TLS_KEYS,
  TOP_KEYS,
} from "../../src/config/_validator.ts";
import { OUTBOUND_KEYS, SUBMISSION_KEYS } from "../../src/config/_outbound.ts";
import { FETCH_KEYS } from "../../src/config/_fetch.ts";
import { REPO_ROOT } from "../_helpers/server_process.ts";

const SECTIONS: Record<string, readonly string[]> = {
  log: LOG_KEYS,
  tls: TLS_KEYS,
  smtp: SMTP_KEYS,
  odmr: ODMR_KEYS,
  queue: QUEUE_KEYS,
  "queue.postgres": POSTGRES_KEYS,
  metrics: METRICS_KEYS,
  submission: SUBMISSION_KEYS,
  outbound: OUTBOUND_KEYS,
  fetch: FETCH_KEYS,
};

/** Every key path the loader knows, sections replaced by their keys. */
function knownKeys(): string[] {
  const out: string[] = [];
  const walk = (prefix: string, keys: readonly string[]) => {
    for (const k of keys) {
      const path = prefix === "" ? k : `${prefix}.${k}`;
      const inner = SECTIONS[path];
      if (inner === undefined) out.push(path);
      else walk(path, inner);
    }
  };
  walk("", TOP_KEYS);
  return out;
}

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
