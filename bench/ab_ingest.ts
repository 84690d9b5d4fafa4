// MX ingest A/B of two builds on a shared machine (issue 13): one `serve` from each tree side by
// side, smtp-source batches alternating between them (A B, then B A, ...), so that load from
// elsewhere falls on both alike. Prints, per build, the median and every batch of msg/s, serve's
// CPU per message (all threads) and its main thread's (the event loop), then B's msg/s over A's
// paired round by round (same code in both trees, session 11: 0.80-1.20 per round, median 1.03 at
// 10 x 100 KB; read a gain only past that). Not part of `deno task bench`; run it under the lock:
//   flock /tmp/odmr-bench.lock deno run -A bench/ab_ingest.ts /work/main /work/my-tree 10 10 2000 4096
// (tree A, tree B, rounds, sessions, messages per batch, payload bytes). Each tree's own
// bench/_serve.ts starts its serve, so both run the code of their tree.

import { cpuMs } from "./_proc.ts";
import { runSource, type SourceShape } from "./_smtp_source.ts";

const DOMAIN = "bench.example";

/** The part of a tree's bench/_serve.ts this uses. */
interface TreeServe {
  readonly smtpPort: number;
  readonly pid: number;
  stop(): Promise<void>;
}

interface Batch {
  readonly msgPerSec: number;
  readonly cpuUs: number;
  readonly mainUs: number;
}

const [treeA, treeB, roundsArg, sessionsArg, messagesArg, bytesArg] = Deno.args;
if (treeA === undefined || treeB === undefined) {
  throw new Error("usage: ab_ingest.ts TREE_A TREE_B [rounds] [sessions] [messages] [bytes]");
}
const rounds = Number(roundsArg ?? 6);
const shape: SourceShape = {
  sessions: Number(sessionsArg ?? 10),
  messages: Number(messagesArg ?? 2000),
  bytes: Number(bytesArg ?? 4096),
};

/** One batch into `serve`: msg/s and CPU µs per message (process, main thread). */
async function batch(serve: TreeServe, s: SourceShape): Promise<Batch> {
  const cpu0 = await cpuMs(serve.pid);
  const main0 = await cpuMs(serve.pid, serve.pid);
  const r = await runSource(serve.smtpPort, s, { rcpt: `u@${DOMAIN}`, timeoutMs: 600_000 });
  return {
    msgPerSec: r.msgPerSec,
    cpuUs: ((await cpuMs(serve.pid)) - cpu0) * 1000 / s.messages,
    mainUs: ((await cpuMs(serve.pid, serve.pid)) - main0) * 1000 / s.messages,
  };
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
}

const trees = [treeA, treeB];
const dirs: string[] = [];
const serves = new Map<string, TreeServe>();
const batches = new Map<string, Batch[]>(trees.map((t) => [t, []]));
try {
  for (const tree of trees) {
    // A tree given relative to the working directory, not to this file.
    const root = new URL(`${tree.replace(/\/$/, "")}/`, `file://${Deno.cwd()}/`);
    const { Serve } = await import(new URL("bench/_serve.ts", root).href);
    const dir = await Deno.makeTempDir({ prefix: "odmr-bench-ab-" });
    dirs.push(dir);
    serves.set(tree, await Serve.start({ dir, domain: DOMAIN }));
  }
  // Warm-up: the JIT and the first WAL pages of each serve.
  for (const serve of serves.values()) await batch(serve, { ...shape, messages: 100 });
  for (let round = 0; round < rounds; round++) {
    for (const tree of round % 2 === 0 ? trees : [...trees].reverse()) {
      const serve = serves.get(tree);
      if (serve !== undefined) batches.get(tree)?.push(await batch(serve, shape));
    }
  }
} finally {
  for (const serve of serves.values()) await serve.stop();
  for (const dir of dirs) await Deno.remove(dir, { recursive: true });
}
for (const tree of trees) {
  const b = batches.get(tree) ?? [];
  const list = (f: (x: Batch) => number) => b.map((x) => f(x).toFixed(0)).join(" ");
  // deno-lint-ignore no-console -- a bench prints its figures
  console.log(
    `${tree} s${shape.sessions} x ${shape.bytes} B: ` +
      `msg/s ${median(b.map((x) => x.msgPerSec)).toFixed(0)} [${list((x) => x.msgPerSec)}]; ` +
      `serve CPU µs/msg ${median(b.map((x) => x.cpuUs)).toFixed(0)} [${list((x) => x.cpuUs)}]; ` +
      `main thread ${median(b.map((x) => x.mainUs)).toFixed(0)} [${list((x) => x.mainUs)}]`,
  );
}

// Paired per round (each round ran A and B back to back, under much the same load): B's msg/s over
// A's, median and per round, and in how many rounds B was the faster. Steadier than comparing the
// two medians when the machine's load changes from one round to the next.
const a = batches.get(treeA) ?? [];
const b = batches.get(treeB) ?? [];
const ratios = a.map((x, i) => (b[i]?.msgPerSec ?? NaN) / x.msgPerSec);
// deno-lint-ignore no-console -- a bench prints its figures
console.log(
  `paired: ${treeB} / ${treeA} msg/s ${median(ratios).toFixed(2)} ` +
    `[${ratios.map((r) => r.toFixed(2)).join(" ")}]; faster in ${
      ratios.filter((r) => r > 1).length
    } of ${ratios.length} rounds`,
);
