// Endless command line (issue 10 item 3): a fresh `serve`, then 50 connections on the SMTP
// port and 50 on the ODMR port that each stream 20 MB with no LF. Every read path holds at
// most one line limit per connection, so serve's VmRSS must stay within +50 MB of idle and
// come back afterwards. VmRSS from /proc/PID/status, sampled every 50 ms.
//
//   deno task bench -- endless

import net from "node:net";
import { BENCH_DOMAIN, type BenchContext } from "./ingest.ts";
import { rssBytes, sleep } from "./_proc.ts";
import { Serve } from "./_serve.ts";
import { fmtMb, naCell, type Table } from "./_table.ts";

const CONNECTIONS = 50;
const BYTES_EACH = 20 * 1024 * 1024;
const WRITE_BYTES = 64 * 1024;
const IDLE_WAIT_MS = 3_000;
const AFTER_WAIT_MS = 10_000;
const SAMPLE_MS = 50;
const GOAL_GROWTH_BYTES = 50e6;

/** Streams `total` bytes of "a" with no LF, honouring backpressure; resolves when done or cut. */
function streamWithoutLf(port: number, total: number): Promise<number> {
  return new Promise((resolve) => {
    const chunk = new Uint8Array(WRITE_BYTES).fill(0x61);
    const sock = net.connect({ host: "127.0.0.1", port });
    let sent = 0;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      sock.destroy();
      resolve(sent);
    };
    sock.on("error", finish);
    sock.on("close", finish);
    sock.on("data", () => {}); // greeting and any reply: read and ignore
    const pump = () => {
      while (sent < total) {
        const n = Math.min(WRITE_BYTES, total - sent);
        sent += n;
        if (!sock.write(n === WRITE_BYTES ? chunk : chunk.subarray(0, n))) {
          sock.once("drain", pump);
          return;
        }
      }
      sock.end(finish);
    };
    sock.on("connect", pump);
  });
}

/** Runs one port's flood and samples serve's RSS while it lasts. */
async function flood(serve: Serve, port: number, connections: number, bytes: number) {
  let peak = 0;
  let running = true;
  const sampling = (async () => {
    while (running) {
      peak = Math.max(peak, (await rssBytes(serve.pid)) ?? 0);
      await sleep(SAMPLE_MS);
    }
  })();
  const t0 = performance.now();
  const sent = await Promise.all(
    Array.from({ length: connections }, () => streamWithoutLf(port, bytes)),
  );
  const seconds = (performance.now() - t0) / 1000;
  running = false;
  await sampling;
  return { peak, seconds, sentBytes: sent.reduce((a, b) => a + b, 0) };
}

/** Runs the endless-line benchmark on both ports. */
export async function endlessLineBench(ctx: BenchContext): Promise<Table[]> {
  const connections = Math.max(5, Math.round(CONNECTIONS / ctx.scale));
  const table: Table = {
    title: `serve memory under endless command lines: ${connections} connections × ` +
      `${fmtMb(BYTES_EACH)} without LF, per port`,
    headers: ["port", "idle VmRSS", "peak VmRSS", "growth", "after 10 s", "sent", "time", "goal"],
    rows: [],
    notes: [
      "fresh `serve`; each connection streams bytes with no LF until done, then closes; " +
      `goal: peak within +${fmtMb(GOAL_GROWTH_BYTES)} of idle, and back near idle after`,
    ],
  };
  let serve: Serve;
  try {
    serve = await Serve.start({ dir: `${ctx.dir}/endless`, domain: BENCH_DOMAIN });
  } catch (e) {
    table.rows.push(["serve", naCell(e), "", "", "", "", "", ""]);
    return [table];
  }
  ctx.defer(() => serve.stop());
  const ports: [string, number | undefined][] = [["smtp", serve.smtpPort], [
    "odmr",
    serve.odmrPort,
  ]];
  for (const [name, port] of ports) {
    if (port === undefined) {
      table.rows.push([name, "n/a (no listener)", "", "", "", "", "", ""]);
      continue;
    }
    await sleep(IDLE_WAIT_MS);
    const idle = (await rssBytes(serve.pid)) ?? 0;
    const r = await flood(serve, port, connections, BYTES_EACH);
    await sleep(AFTER_WAIT_MS);
    const after = (await rssBytes(serve.pid)) ?? 0;
    const growth = r.peak - idle;
    table.rows.push([
      name,
      fmtMb(idle),
      fmtMb(r.peak),
      `+${fmtMb(growth)}`,
      fmtMb(after),
      fmtMb(r.sentBytes),
      `${r.seconds.toFixed(1)} s`,
      growth <= GOAL_GROWTH_BYTES ? "meets" : "misses",
    ]);
  }
  return [table];
}
