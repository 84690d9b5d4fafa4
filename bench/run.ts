// Benchmark runner: `deno task bench [-- ingest|drain|fetch|tls|memory|atrn|outbound …] [--quick] [--repeat=N]`.
// Needs no config file: every benchmark gets its own temp dir, and everything started is
// stopped (by PID, or `postfix -c DIR stop`) and the temp dir removed, even on failure or Ctrl-C.
// deno-lint-ignore-file no-console -- a benchmark's job is to print its tables on stdout

import { drainBench } from "./drain.ts";
import { fetchBench } from "./fetch.ts";
import { type BenchContext, ingestBench } from "./ingest.ts";
import { tlsBench } from "./tls.ts";
import { memoryBench } from "./memory.ts";
import { atrnScaleBench } from "./atrn_scale.ts";
import { postgresBench } from "./postgres.ts";
import { endlessLineBench } from "./endless_line.ts";
import { outboundBench } from "./outbound.ts";
import { stopAll } from "./_proc.ts";
import { naCell, renderTable, type Table } from "./_table.ts";
import { Summary } from "./_summary.ts";

const BENCHES = {
  ingest: ingestBench,
  drain: drainBench,
  fetch: fetchBench,
  tls: tlsBench,
  memory: memoryBench,
  atrn: atrnScaleBench,
  postgres: postgresBench,
  endless: endlessLineBench,
  outbound: outboundBench,
} as const;
type BenchName = keyof typeof BENCHES;

function isBenchName(s: string): s is BenchName {
  return Object.hasOwn(BENCHES, s);
}

const USAGE = `usage: deno task bench [-- ${
  Object.keys(BENCHES).join("|")
} ...] [--quick] [--repeat=N]`;

async function main(args: string[]): Promise<number> {
  const quick = args.includes("--quick");
  const repeatArg = args.find((a) => a.startsWith("--repeat="));
  const repeat = repeatArg === undefined ? (quick ? 1 : 3) : Number(repeatArg.slice(9));
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) {
    console.error(`error: --repeat must be 1-20: current value is "${repeatArg}"\n${USAGE}`);
    return 2;
  }
  const names = args.filter((a) => a !== "--quick" && a !== "--" && a !== repeatArg);
  for (const n of names) {
    if (!isBenchName(n)) {
      console.error(`error: unknown benchmark "${n}"\n${USAGE}`);
      return 2;
    }
  }
  const selected: BenchName[] = names.length === 0
    ? (Object.keys(BENCHES) as BenchName[])
    : names.filter(isBenchName);

  const cleanups: (() => Promise<void>)[] = [];
  const root = await Deno.makeTempDir({ prefix: "odmr-bench-" });
  // Postfix's daemons run as the postfix user and must traverse down to their queue dir.
  await Deno.chmod(root, 0o755);
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    console.error("interrupted: stopping what the benchmark started");
    cleanUp(cleanups, root).finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  console.log(
    `# odmr-relay benchmarks (${new Date().toISOString()}, deno ${Deno.version.deno}, ` +
      `${navigator.hardwareConcurrency} CPUs, ingest median of ${repeat}` +
      `${quick ? ", --quick: counts ÷ 10" : ""})\n`,
  );
  let failed = 0;
  const summary = new Summary();
  try {
    for (const name of selected) {
      const ctx: BenchContext = {
        dir: `${root}/${name}`,
        scale: quick ? 10 : 1,
        repeat,
        defer: (fn) => cleanups.push(fn),
        summary,
      };
      await Deno.mkdir(ctx.dir, { recursive: true, mode: 0o755 });
      let tables: Table[];
      const t0 = performance.now();
      try {
        tables = await BENCHES[name](ctx);
      } catch (e) {
        failed++;
        tables = [{ title: name, headers: ["result"], rows: [[naCell(e)]], notes: [] }];
      }
      // Stop this benchmark's processes before the next one measures anything.
      await runCleanups(cleanups);
      for (const t of tables) console.log(renderTable(t));
      console.log(`(${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
    }
    console.log(renderTable(summary.table()));
  } finally {
    await cleanUp(cleanups, root);
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  return failed === 0 ? 0 : 1;
}

async function runCleanups(cleanups: (() => Promise<void>)[]): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.pop();
    try {
      await fn?.();
    } catch (e) {
      console.error(`cleanup: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

async function cleanUp(cleanups: (() => Promise<void>)[], root: string): Promise<void> {
  await runCleanups(cleanups);
  await stopAll();
  await Deno.remove(root, { recursive: true }).catch((e) => {
    console.error(`cannot remove "${root}": ${e instanceof Error ? e.message : String(e)}`);
  });
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
