// Drain A/B of two builds on a shared machine (issue 13): one `serve` from each tree side by
// side; each round fills both with N × 4 KB and drains each with its own tree's `fetch --once`
// into a fresh smtp-sink, the order alternating (A B, then B A, ...), so that load from
// elsewhere falls on both alike. Per build: the median and every run of the fetch wall clock
// (what bench/tls.ts times), split at serve's `atrn` line into start-up (process start to
// ATRN accepted) and the drain (ATRN to exit), and serve's CPU over the run. Not part of
// `deno task bench`; run it under the bench lock:
//   flock /tmp/odmr-bench.lock deno run -A bench/ab_drain.ts /work/main /work/my-tree 6 2000
// (tree A, tree B, rounds, messages). Each tree's own bench/_serve.ts starts its serve and
// fetch, so both run the code of their tree.

import { cpuMs } from "./_proc.ts";
import { fillServe } from "./drain.ts";
import { BENCH_DOMAIN } from "./ingest.ts";
import { SmtpSink } from "../tests/_helpers/smtp_sink.ts";

/** The part of a tree's bench/_serve.ts Serve this uses. */
interface TreeServe {
  readonly pid: number;
  readonly smtpPort: number;
  fetchOnce(opts: { domain: string; deliverTo: string; timeoutMs: number }): Promise<
    { readonly code: number; readonly ms: number; readonly output: string }
  >;
  tail(): string;
  stop(): Promise<void>;
}

interface Run {
  readonly wallMs: number;
  /** Process start to serve's `atrn` line; NaN when the line was not seen. */
  readonly startupMs: number;
  readonly serveCpuMs: number;
}

const [treeA, treeB, roundsArg, messagesArg] = Deno.args;
if (treeA === undefined || treeB === undefined) {
  throw new Error("usage: ab_drain.ts TREE_A TREE_B [rounds] [messages]");
}
const rounds = Number(roundsArg ?? 6);
const n = Number(messagesArg ?? 2000);

/** One drain of `n` queued messages by the tree's fetch --once. */
async function drain(serve: TreeServe): Promise<Run> {
  await fillServe(serve as never, n);
  const sink = await SmtpSink.start();
  try {
    // serve's log passes through a bounded tail: its `atrn` line is caught while the run goes.
    let atrnAt = Number.NaN;
    let isWatching = true;
    const startedAt = Date.now();
    const watcher = (async () => {
      while (isWatching && Number.isNaN(atrnAt)) {
        for (const line of serve.tail().split("\n")) {
          const at = / event=atrn\b/.test(line) ? Date.parse(line.split(" ")[0] ?? "") : NaN;
          if (at >= startedAt) atrnAt = at;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const cpu0 = await cpuMs(serve.pid);
    const r = await serve.fetchOnce({
      domain: BENCH_DOMAIN,
      deliverTo: `smtp://127.0.0.1:${sink.port}`,
      timeoutMs: 30_000 + n * 20,
    });
    const serveCpuMs = (await cpuMs(serve.pid)) - cpu0;
    isWatching = false;
    await watcher;
    if (r.code !== 0) throw new Error(`fetch --once exited ${r.code}: ${r.output.slice(-300)}`);
    if (!(await sink.waitMessages(n, 5_000))) throw new Error(`smtp-sink got ${sink.messages()}`);
    return { wallMs: r.ms, startupMs: atrnAt - startedAt, serveCpuMs };
  } finally {
    await sink.stop();
  }
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
const f0 = (x: number) => x.toFixed(0);

const dir = await Deno.makeTempDir({ prefix: "odmr-ab-drain-" });
await Deno.chmod(dir, 0o755);
const trees = [treeA, treeB];
const serves: TreeServe[] = [];
try {
  for (const [i, tree] of trees.entries()) {
    const { Serve } = await import(`${new URL(`file://${tree}/`).href}bench/_serve.ts`);
    const serve: TreeServe = await Serve.start({ dir, name: `serve-${i}`, domain: BENCH_DOMAIN });
    serves.push(serve);
    await serve.fetchOnce({
      domain: BENCH_DOMAIN,
      deliverTo: "smtp://127.0.0.1:9",
      timeoutMs: 30_000,
    })
      .catch(() => undefined); // warm-up on the empty queue (Deno's code cache)
  }
  const runs: Run[][] = [[], []];
  for (let round = 0; round < rounds; round++) {
    for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) {
      const serve = serves[i];
      if (serve !== undefined) runs[i]?.push(await drain(serve));
    }
  }
  for (const [i, tree] of trees.entries()) {
    const rs = runs[i] ?? [];
    const drainMs = rs.map((r) => r.wallMs - r.startupMs);
    // deno-lint-ignore no-console -- the report is the point of this script
    console.log(
      `${tree}: ${n} msgs, fetch wall median ${f0(median(rs.map((r) => r.wallMs)))} ms ` +
        `(start-up ${f0(median(rs.map((r) => r.startupMs)))}, drain ${f0(median(drainMs))}), ` +
        `serve CPU ${f0(median(rs.map((r) => r.serveCpuMs)))} ms\n  runs: ` +
        rs.map((r) => `${f0(r.wallMs)} (${f0(r.startupMs)}+${f0(r.wallMs - r.startupMs)})`)
          .join(" "),
    );
  }
} finally {
  for (const s of serves) await s.stop();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
