// Memory benchmark (issue 13): a fresh `serve` idle, then while smtp-source ingests 50k × 1 KB
// (10 sessions), then 30 s after. VmRSS/VmHWM from /proc/PID/status (`deno run` is serve
// itself), and V8's heap beside it (Deno.memoryUsage() through bench/_heap_probe.ts).
// bench/rss.ts is the tool to look deeper (timelines, V8 flags).

import { BENCH_DOMAIN, type BenchContext } from "./ingest.ts";
import { peakRssBytes, rssBytes, sleep } from "./_proc.ts";
import { type HeapSample, readHeapSamples } from "./_heap_probe.ts";
import { Serve } from "./_serve.ts";
import { runSource } from "./_smtp_source.ts";
import { fmtMb, fmtRate, naCell, type Table } from "./_table.ts";

const N = 50_000;
const KB = 1024;
const IDLE_WAIT_MS = 3_000;
const AFTER_WAIT_MS = 30_000;
const GOALS = { idle: 60e6, peak: 120e6, after: 100e6 };

/** V8's side of one moment: heap total / used and external (ArrayBuffers), in MB. */
function heapCell(s: HeapSample | undefined): string {
  if (s === undefined) return "n/a";
  const mb = (n: number) => (n / 1e6).toFixed(1);
  return `heap ${mb(s.heapTotal)} (used ${mb(s.heapUsed)}), external ${mb(s.external)} MB`;
}

/** The sample nearest before `t` (ms since serve started). */
function sampleAt(samples: HeapSample[], t: number): HeapSample | undefined {
  let found: HeapSample | undefined;
  for (const s of samples) if (s.t <= t) found = s;
  return found;
}

function cell(bytes: number | undefined, goal: number): string {
  if (bytes === undefined) return "n/a";
  return `${fmtMb(bytes)} (${bytes <= goal ? "meets" : "misses"} ≤ ${fmtMb(goal)})`;
}

/** Runs the memory benchmark. */
export async function memoryBench(ctx: BenchContext): Promise<Table[]> {
  const n = Math.max(1, Math.round(N / ctx.scale));
  const afterMs = ctx.scale === 1 ? AFTER_WAIT_MS : AFTER_WAIT_MS / 6;
  const table: Table = {
    title: `serve memory: idle, ingesting ${n} × 1 KB, ${afterMs / 1000} s after`,
    headers: ["measure", "value"],
    rows: [],
    notes: [
      "fresh `serve` (SQLite queue) with one user; smtp-source -s 10 -l 1024, one message per " +
      "connection; VmRSS (now) and VmHWM (peak) from /proc/PID/status",
      "V8: Deno.memoryUsage() in serve every 250 ms (bench/_heap_probe.ts); what RSS holds " +
      "beyond heap + external is code, SQLite, the allocator and Deno's own buffers",
    ],
  };
  let serve: Serve;
  try {
    serve = await Serve.start({
      dir: `${ctx.dir}/memory`,
      domain: BENCH_DOMAIN,
      heapProbe: `${ctx.dir}/memory-heap.jsonl`,
    });
  } catch (e) {
    table.rows.push(["serve", naCell(e)]);
    return [table];
  }
  ctx.defer(() => serve.stop());
  try {
    const t0 = performance.now();
    await sleep(IDLE_WAIT_MS);
    const idle = await rssBytes(serve.pid);
    const tIdle = performance.now() - t0;
    const r = await runSource(serve.smtpPort, { sessions: 10, messages: n, bytes: KB }, {
      rcpt: `rcpt@${BENCH_DOMAIN}`,
      timeoutMs: 60_000 + n * 20,
    });
    const peak = await peakRssBytes(serve.pid);
    const tIngested = performance.now() - t0;
    await sleep(afterMs);
    const after = await rssBytes(serve.pid);
    const samples = await readHeapSamples(`${ctx.dir}/memory-heap.jsonl`);
    const ingesting = samples.filter((s) => s.t > tIdle && s.t <= tIngested);
    const top = ingesting.reduce<HeapSample | undefined>(
      (a, b) => (a === undefined || b.heapTotal > a.heapTotal ? b : a),
      undefined,
    );
    table.rows.push(
      ["idle (VmRSS 3 s after start)", cell(idle, GOALS.idle)],
      ["peak while ingesting (VmHWM)", cell(peak, GOALS.peak)],
      [`${afterMs / 1000} s after (VmRSS)`, cell(after, GOALS.after)],
      ["ingest rate", `${fmtRate(r.msgPerSec)} msg/s`],
      ["V8 idle", heapCell(sampleAt(samples, tIdle))],
      ["V8 largest heap while ingesting", heapCell(top)],
      ["V8 after", heapCell(samples[samples.length - 1])],
    );
    const mb = (b: number | undefined) => b === undefined ? "n/a" : (b / 1e6).toFixed(0);
    ctx.summary.set("serveRss", `${mb(idle)} / ${mb(peak)} / ${mb(after)} MB (N=${n})`);
  } catch (e) {
    table.rows.push(["ingest", naCell(e)]);
  }
  await serve.stop();
  return [table];
}
