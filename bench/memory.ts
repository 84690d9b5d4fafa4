// Memory benchmark (issue 13): a fresh `serve` idle, then while smtp-source ingests 50k × 1 KB
// (10 sessions), then 30 s after. VmRSS/VmHWM from /proc/PID/status (`deno run` is serve
// itself). bench/rss.ts is the tool to look deeper (timelines, V8 flags).

import { BENCH_DOMAIN, type BenchContext } from "./ingest.ts";
import { peakRssBytes, rssBytes, sleep } from "./_proc.ts";
import { Serve } from "./_serve.ts";
import { runSource } from "./_smtp_source.ts";
import { fmtMb, fmtRate, naCell, type Table } from "./_table.ts";

const N = 50_000;
const KB = 1024;
const IDLE_WAIT_MS = 3_000;
const AFTER_WAIT_MS = 30_000;
const GOALS = { idle: 60e6, peak: 120e6, after: 100e6 };

/** Current resident set size of a process, in bytes. */
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
    ],
  };
  let serve: Serve;
  try {
    serve = await Serve.start({ dir: `${ctx.dir}/memory`, domain: BENCH_DOMAIN });
  } catch (e) {
    table.rows.push(["serve", naCell(e)]);
    return [table];
  }
  ctx.defer(() => serve.stop());
  try {
    await sleep(IDLE_WAIT_MS);
    const idle = await rssBytes(serve.pid);
    const r = await runSource(serve.smtpPort, { sessions: 10, messages: n, bytes: KB }, {
      rcpt: `rcpt@${BENCH_DOMAIN}`,
      timeoutMs: 60_000 + n * 20,
    });
    const peak = await peakRssBytes(serve.pid);
    await sleep(afterMs);
    const after = await rssBytes(serve.pid);
    table.rows.push(
      ["idle (VmRSS 3 s after start)", cell(idle, GOALS.idle)],
      ["peak while ingesting (VmHWM)", cell(peak, GOALS.peak)],
      [`${afterMs / 1000} s after (VmRSS)`, cell(after, GOALS.after)],
      ["ingest rate", `${fmtRate(r.msgPerSec)} msg/s`],
    );
    const mb = (b: number | undefined) => b === undefined ? "n/a" : (b / 1e6).toFixed(0);
    ctx.summary.set("serveRss", `${mb(idle)} / ${mb(peak)} / ${mb(after)} MB (N=${n})`);
  } catch (e) {
    table.rows.push(["ingest", naCell(e)]);
  }
  await serve.stop();
  return [table];
}
