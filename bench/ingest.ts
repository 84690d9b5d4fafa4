// Ingest benchmark (issue 3): smtp-source into our `serve`, a private Postfix (queue ingest,
// mail held on arrival) and smtp-sink (stores nothing; a reference, not a ceiling: see bench/README.md), shape by shape in the same run; then the
// peak RSS of a fresh `serve` while it ingests one 50 MB message.

import { PrivatePostfix } from "./_postfix.ts";
import { freePort } from "./_proc.ts";
import { lastLine, Serve } from "./_serve.ts";
import { SmtpSink } from "../tests/_helpers/smtp_sink.ts";
import { runSource, type SourceResult, type SourceShape } from "./_smtp_source.ts";
import { type LatencyResult, type LatencyShape, runLatency } from "./_latency.ts";
import { fmtMb, fmtRate, fmtRatio, naCell, type Table } from "./_table.ts";
import type { Summary, SummaryKey } from "./_summary.ts";

/** What every benchmark gets from run.ts. */
export interface BenchContext {
  /** A temp dir of its own, removed by run.ts. */
  readonly dir: string;
  /** Divide message counts by this (1 = the documented sizes; `--quick` uses 10). */
  readonly scale: number;
  /** Runs per measurement in the ingest benchmark; the median is reported. */
  readonly repeat: number;
  /** Registers a cleanup to run even on failure (LIFO). */
  defer(fn: () => Promise<void>): void;
  /** Issue 13's table, printed last: each benchmark fills the rows it measures. */
  readonly summary: Summary;
}

/** The domain every benchmark sends to. */
export const BENCH_DOMAIN = "bench.example";
const RCPT = `rcpt@${BENCH_DOMAIN}`;
const KB = 1024;
const RUN_TIMEOUT_MS = 300_000;
const BIG_MESSAGE_BYTES = 50 * 1024 * 1024;
const RSS_TARGET_BYTES = 100e6;
/** Issue 13: the customer frees body pieces once written. */
const FETCH_RSS_TARGET_BYTES = 80e6;

/** Issue 3's shapes: parallel sessions × message size, with a fixed message count each. */
const SHAPES: readonly (SourceShape & { label: string; summary?: SummaryKey })[] = [
  { label: "1×4 KB", sessions: 1, bytes: 4 * KB, messages: 2000, summary: "ingest1x4" },
  { label: "10×4 KB", sessions: 10, bytes: 4 * KB, messages: 2000, summary: "ingest10x4" },
  { label: "50×4 KB", sessions: 50, bytes: 4 * KB, messages: 2000 },
  { label: "10×100 KB", sessions: 10, bytes: 100 * KB, messages: 500, summary: "ingest10x100" },
];

type Target = "sink" | "postfix" | "ours";

/** Issue 13 item 4: one sender alone, messages one after the other. */
const LONE_SHAPES: readonly (LatencyShape & { label: string; summary?: SummaryKey })[] = [
  {
    label: "1 connection per message",
    messages: 500,
    bytes: 4 * KB,
    perConnection: true,
    summary: "ingestLone",
  },
  { label: "all over 1 connection", messages: 500, bytes: 4 * KB, perConnection: false },
];

/** Runs the ingest benchmark; returns the throughput table and the RSS table. */
export async function ingestBench(ctx: BenchContext): Promise<Table[]> {
  const targets = await startTargets(ctx);
  const rows: string[][] = [];
  for (const shape of SHAPES) {
    const s = { ...shape, messages: Math.max(1, Math.round(shape.messages / ctx.scale)) };
    const res = await measureShape(targets, s, ctx.repeat);
    const cell = (r: SourceResult | string | undefined) =>
      r === undefined ? "n/a" : typeof r === "string" ? r : fmtRate(r.msgPerSec);
    const mb = (r: SourceResult | string | undefined) =>
      r === undefined || typeof r === "string" ? "" : r.mbPerSec.toFixed(1);
    const rate = (r: SourceResult | string | undefined) =>
      r === undefined || typeof r === "string" ? undefined : r.msgPerSec;
    const paired = res.pairedRatios.length > 1
      ? `; paired by round ${fmtRatio(median(res.pairedRatios), 1)} [${
        res.pairedRatios.map((r) => fmtRatio(r, 1)).join(" ")
      }]`
      : "";
    if (shape.summary !== undefined) {
      ctx.summary.set(
        shape.summary,
        // smtp-sink stores nothing, but it is no ceiling: at 10 x 100 KB it is slower than a null
        // MX (bench/ingest_ceiling.ts: 3.5x Postfix where smtp-sink shows 1.35x).
        `${fmtRatio(rate(res.ours), rate(res.postfix))} (${cell(res.ours)} vs ${
          cell(res.postfix)
        } msg/s; smtp-sink, storing nothing: ${
          fmtRatio(rate(res.sink), rate(res.postfix))
        }${paired})`,
      );
    }
    rows.push([
      shape.label,
      String(s.messages),
      cell(res.ours),
      mb(res.ours),
      cell(res.postfix),
      mb(res.postfix),
      cell(res.sink),
      mb(res.sink),
      fmtRatio(rate(res.ours), rate(res.postfix)) + paired.replace("; paired by round", ", paired"),
    ]);
  }
  const lone = await loneSenderTable(ctx, targets);
  await targets.stop();

  return [
    {
      title: "Ingest (smtp-source → server)",
      headers: [
        "shape",
        "msgs",
        "ours msg/s",
        "ours MB/s",
        "Postfix msg/s",
        "Postfix MB/s",
        "smtp-sink msg/s",
        "smtp-sink MB/s",
        "ours/Postfix",
      ],
      rows,
      notes: [
        "shape = parallel smtp-source sessions (-s) × payload size (-l); one message per " +
        "connection; msgs = total messages (-m); 1 recipient each; MB = 10^6 payload bytes",
        "time = wall clock of smtp-source, i.e. until the last 250 after DATA; median of " +
        `${ctx.repeat} run(s) per cell; each round runs smtp-sink, Postfix and ours once ` +
        "(Postfix and ours swap places every other round; sync before each run); paired = the " +
        "median of ours / Postfix within each round [every round]",
        "ours: `serve` with a SQLite queue (WAL fsynced before each 250) in a temp dir",
        "Postfix: private instance, mail HELD on arrival (fsynced queue file, no delivery)",
        "smtp-sink: accepts and discards, nothing stored (a reference, slow with 100 KB bodies)",
      ],
    },
    lone,
    await rssTable(ctx),
  ];
}

/** The lone sender's "." → 250 against each target, in the same run as the shapes. */
async function loneSenderTable(ctx: BenchContext, targets: Targets): Promise<Table> {
  const rows: string[][] = [];
  for (const shape of LONE_SHAPES) {
    const s = { ...shape, messages: Math.max(10, Math.round(shape.messages / ctx.scale)) };
    const res = await eachTarget(targets, async (t, port) => {
      try {
        const r = await runLatency(port, s, { rcpt: RCPT });
        await checkHeld(targets, t, s.messages);
        return r;
      } catch (e) {
        return naCell(e);
      }
    });
    const cell = (r: LatencyResult | string | undefined) =>
      r === undefined
        ? "n/a"
        : typeof r === "string"
        ? r
        : `${r.p50Ms.toFixed(2)} / ${r.p99Ms.toFixed(2)} ms, ${fmtRate(r.msgPerSec)} msg/s`;
    if (shape.summary !== undefined) {
      ctx.summary.set(shape.summary, `ours ${cell(res.ours)}; Postfix ${cell(res.postfix)}`);
    }
    rows.push([shape.label, String(s.messages), cell(res.ours), cell(res.postfix), cell(res.sink)]);
  }
  return {
    title: 'A lone sender: "." → 250 (p50 / p99) and msg/s, one message at a time',
    headers: ["sender", "msgs", "ours", "Postfix", "smtp-sink"],
    rows,
    notes: [
      "bench/_latency.ts: one client, 4 KB messages strictly one after the other; the clock runs " +
      'from writing the final "." to reading the 250 (msg/s includes connection set-up)',
      "no other sender is active: a lone message must not wait for a group that is not coming",
    ],
  };
}

/** What one shape measured: each target's median run, and ours / Postfix's round by round. */
interface ShapeResult extends Partial<Record<Target, SourceResult | string>> {
  /** ours / Postfix in each round where both ran (rounds alternate the targets). */
  readonly pairedRatios: number[];
}

/**
 * Runs one shape `repeat` rounds; each round runs every target once, one after the other, so
 * that the machine's drift falls on all of them alike. A target's cell is its median run; a
 * target that failed once keeps the reason and is not run again.
 */
async function measureShape(
  targets: Targets,
  s: SourceShape,
  repeat: number,
): Promise<ShapeResult> {
  const runs: Record<Target, SourceResult[]> = { sink: [], postfix: [], ours: [] };
  const failed: Partial<Record<Target, string>> = {};
  const pairedRatios: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const round = await eachTarget(targets, async (t, port) => {
      if (failed[t] !== undefined) return failed[t];
      try {
        const r = await runSource(port, s, { rcpt: RCPT, timeoutMs: RUN_TIMEOUT_MS });
        await checkHeld(targets, t, s.messages);
        runs[t].push(r);
        return r;
      } catch (e) {
        failed[t] = naCell(e);
        return failed[t];
      }
    }, i);
    const ours = round.ours, postfix = round.postfix;
    if (typeof ours === "object" && typeof postfix === "object" && postfix.msgPerSec > 0) {
      pairedRatios.push(ours.msgPerSec / postfix.msgPerSec);
    }
  }
  const cell = (t: Target): SourceResult | string => {
    if (failed[t] !== undefined) return failed[t];
    const sorted = [...runs[t]].sort((a, b) => a.msgPerSec - b.msgPerSec);
    return sorted[Math.floor(sorted.length / 2)] ??
      (typeof targets.ports[t] === "string" ? targets.ports[t] : "n/a (no run)");
  };
  return { sink: cell("sink"), postfix: cell("postfix"), ours: cell("ours"), pairedRatios };
}

/** The median of `xs` (the mean of the middle two for an even count). */
function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs `run` against each target in turn; one that did not start keeps its reason. */
async function eachTarget<R>(
  targets: Targets,
  run: (t: Target, port: number) => Promise<R | string>,
  round = 0,
): Promise<Partial<Record<Target, R | string>>> {
  const res: Partial<Record<Target, R | string>> = {};
  // Postfix and ours swap places every other round, so that neither always runs right after the
  // other; each run starts with nothing left to write back of the one before (`sync`), as a
  // server's fsyncs would otherwise queue behind the last target's write-back on the same disk.
  const order = round % 2 === 0
    ? ["sink", "postfix", "ours"] as const
    : ["sink", "ours", "postfix"] as const;
  for (const t of order) {
    const port = targets.ports[t];
    if (typeof port === "string") {
      res[t] = port;
      continue;
    }
    await flushDisk();
    res[t] = await run(t, port);
  }
  return res;
}

/** Writes back every dirty page (`sync`), so that the next timed run does not pay for them. */
async function flushDisk(): Promise<void> {
  await new Deno.Command("sync", { stdout: "null", stderr: "null" }).output();
}

/** After `n` more messages went to `t`: for Postfix, every acknowledged one must be held. */
async function checkHeld(targets: Targets, t: Target, n: number): Promise<void> {
  if (t !== "postfix" || targets.postfix === undefined) return;
  await targets.postfix.waitHeld(targets.postfixHeld + n, 10_000);
  targets.postfixHeld += n;
}

interface Targets {
  ports: Record<Target, number | string>;
  postfix: PrivatePostfix | undefined;
  postfixHeld: number;
  stop(): Promise<void>;
}

async function startTargets(ctx: BenchContext): Promise<Targets> {
  const ports: Record<Target, number | string> = { sink: "n/a", postfix: "n/a", ours: "n/a" };
  const stops: (() => Promise<void>)[] = [];
  let postfix: PrivatePostfix | undefined;
  try {
    const sink = await SmtpSink.start();
    stops.push(() => sink.stop());
    ctx.defer(() => sink.stop());
    ports.sink = sink.port;
  } catch (e) {
    ports.sink = naCell(e);
  }
  const why = await PrivatePostfix.unavailable();
  if (why !== undefined) {
    ports.postfix = naCell(why);
  } else {
    try {
      // Postfix relays bench.example to a port nobody listens on: mail is held anyway.
      const pf = await PrivatePostfix.start({
        dir: `${ctx.dir}/ingest`,
        relayPort: freePort(),
        domain: BENCH_DOMAIN,
      });
      postfix = pf;
      stops.push(() => pf.stop());
      ctx.defer(() => pf.stop());
      ports.postfix = pf.smtpPort;
    } catch (e) {
      ports.postfix = naCell(e);
    }
  }
  try {
    const serve = await Serve.start({ dir: `${ctx.dir}/ingest`, domain: BENCH_DOMAIN });
    stops.push(() => serve.stop());
    ctx.defer(() => serve.stop());
    ports.ours = serve.smtpPort;
  } catch (e) {
    ports.ours = naCell(e);
  }
  return {
    ports,
    postfix,
    postfixHeld: 0,
    async stop() {
      for (const s of stops.reverse()) await s();
    },
  };
}

function rssCell(bytes: number | undefined, target = RSS_TARGET_BYTES): string {
  if (bytes === undefined) return "n/a";
  return `${fmtMb(bytes)} (${bytes <= target ? "meets" : "misses"} ≤ ${fmtMb(target)})`;
}

async function rssTable(ctx: BenchContext): Promise<Table> {
  const table: Table = {
    title: "Peak RSS with one 50 MiB message (serve ingests it, fetch --once drains it)",
    headers: ["measure", "value"],
    rows: [],
    notes: [
      "fresh `serve` (deno run is the serve process); VmHWM from /proc/PID/status; fetch's " +
      "VmHWM sampled every 20 ms while it runs",
      `targets: serve ≤ ${fmtMb(RSS_TARGET_BYTES)}, fetch ≤ ${fmtMb(FETCH_RSS_TARGET_BYTES)}`,
    ],
  };
  let serve: Serve;
  try {
    serve = await Serve.start({ dir: `${ctx.dir}/rss`, domain: BENCH_DOMAIN });
  } catch (e) {
    table.rows.push(["peak RSS", naCell(e)]);
    return table;
  }
  ctx.defer(() => serve.stop());
  try {
    const before = await serve.peakRss();
    const r = await runSource(serve.smtpPort, {
      sessions: 1,
      messages: 1,
      bytes: BIG_MESSAGE_BYTES,
    }, { rcpt: RCPT, timeoutMs: RUN_TIMEOUT_MS });
    const after = await serve.peakRss();
    table.rows.push(
      ["serve VmHWM after start-up", before === undefined ? "n/a" : fmtMb(before)],
      ["serve VmHWM after ingesting it", rssCell(after)],
      ["ingest time", `${r.seconds.toFixed(2)} s (${r.mbPerSec.toFixed(1)} MB/s)`],
    );
  } catch (e) {
    table.rows.push(["serve ingest", naCell(e)]);
  }
  const sink = await SmtpSink.start();
  ctx.defer(() => sink.stop());
  try {
    const f = await serve.fetchOnce({
      domain: BENCH_DOMAIN,
      deliverTo: `smtp://127.0.0.1:${sink.port}`,
      timeoutMs: RUN_TIMEOUT_MS,
      sampleRss: true,
    });
    if (f.code !== 0) throw new Error(`fetch --once exited ${f.code}: ${lastLine(f.output)}`);
    if (!(await sink.waitMessages(1, 5_000))) throw new Error("smtp-sink did not get the message");
    ctx.summary.set(
      "fetchRss",
      f.peakRssBytes === undefined ? "n/a" : fmtMb(f.peakRssBytes),
    );
    const drained = await serve.peakRss();
    ctx.summary.set("provideRss", drained === undefined ? "n/a" : fmtMb(drained));
    table.rows.push(
      ["serve VmHWM after draining it", rssCell(drained)],
      ["fetch --once VmHWM (sampled)", rssCell(f.peakRssBytes, FETCH_RSS_TARGET_BYTES)],
      ["fetch --once time", `${(f.ms / 1000).toFixed(2)} s`],
    );
  } catch (e) {
    table.rows.push(["drain to fetch", naCell(e)]);
  }
  await sink.stop();
  await serve.stop();
  return table;
}
