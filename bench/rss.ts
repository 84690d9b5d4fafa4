// Memory probe for issue 3 (bounded memory): starts a fresh `serve`, sends it one big message
// with smtp-source, then (unless --no-drain) drains it with `fetch --once` into smtp-sink, and
// prints VmRSS/VmHWM of serve and of fetch over time from /proc/PID/status, and V8's side of
// it (Deno.memoryUsage() through bench/_heap_probe.ts): heap and external at start-up, at the
// peaks and at the end. Not part of `deno task bench`; a tool to find where the memory goes.
//
//   deno run -A bench/rss.ts                          # 50 MiB, serve + fetch timelines
//   deno run -A bench/rss.ts --mb=20 --no-drain
//   deno run -A bench/rss.ts --flag=--v8-flags=--trace-gc --show-output
//
// --flag=X (repeatable) is passed to `deno run` of serve and fetch, before the script.
// deno-lint-ignore-file no-console -- a probe's job is to print its timeline on stdout

import {
  BENCH_PASSWORD,
  BENCH_USER,
  lastLine,
  odmrRelay,
  PROJECT_ROOT,
  V8_FLAGS,
} from "./_serve.ts";
import { sleep, spawn, type Spawned, stop } from "./_proc.ts";
import { type HeapSample, readHeapSamples } from "./_heap_probe.ts";
import { SmtpSink } from "../tests/_helpers/smtp_sink.ts";
import { runSource } from "./_smtp_source.ts";

const DOMAIN = "bench.example";
const SAMPLE_MS = 25;

interface Options {
  mb: number;
  drain: boolean;
  flags: string[];
  showOutput: boolean;
}

function parseArgs(args: string[]): Options {
  const o: Options = { mb: 50, drain: true, flags: [], showOutput: false };
  for (const a of args) {
    if (a.startsWith("--mb=")) o.mb = Number(a.slice(5));
    else if (a === "--no-drain") o.drain = false;
    else if (a.startsWith("--flag=")) o.flags.push(a.slice(7));
    else if (a === "--show-output") o.showOutput = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

interface Mem {
  rss: number;
  hwm: number;
}

async function readMem(pid: number): Promise<Mem | undefined> {
  try {
    const s = await Deno.readTextFile(`/proc/${pid}/status`);
    const rss = s.match(/^VmRSS:\s+(\d+)\s+kB/m)?.[1];
    const hwm = s.match(/^VmHWM:\s+(\d+)\s+kB/m)?.[1];
    if (rss === undefined || hwm === undefined) return undefined;
    return { rss: Number(rss) * 1024, hwm: Number(hwm) * 1024 };
  } catch {
    return undefined;
  }
}

const mb = (n: number) => (n / 1e6).toFixed(1);

/** V8's view at start-up, at the largest heap, at the largest external, and at the end. */
function printHeap(name: string, samples: HeapSample[]): void {
  const first = samples[0];
  const last = samples[samples.length - 1];
  if (first === undefined || last === undefined) return;
  const maxBy = (k: keyof HeapSample) => samples.reduce((a, b) => (b[k] > a[k] ? b : a), first);
  const line = (what: string, s: HeapSample) =>
    console.log(
      `${name.padEnd(5)} ${what.padEnd(13)} t=${(s.t / 1000).toFixed(2).padStart(6)}s rss ${
        mb(s.rss)
      } heapTotal ${mb(s.heapTotal)} heapUsed ${mb(s.heapUsed)} external ${mb(s.external)} MB`,
    );
  line("first", first);
  line("max rss", maxBy("rss"));
  line("max heapTotal", maxBy("heapTotal"));
  line("max external", maxBy("external"));
  line("last", last);
}

/** Samples a process's memory until stopped; prints a line whenever RSS moved by ≥ 2 MB. */
function sampler(name: string, pid: number, t0: number) {
  let running = true;
  let last = -Infinity;
  let peak: Mem | undefined;
  const done = (async () => {
    while (running) {
      const m = await readMem(pid);
      if (m === undefined) break;
      peak = m;
      if (Math.abs(m.rss - last) >= 2e6) {
        last = m.rss;
        const t = ((performance.now() - t0) / 1000).toFixed(2).padStart(6);
        console.log(
          `${t}s ${name.padEnd(5)} VmRSS ${mb(m.rss).padStart(6)} MB  VmHWM ${mb(m.hwm)} MB`,
        );
      }
      await sleep(SAMPLE_MS);
    }
  })();
  return {
    async stop(): Promise<Mem | undefined> {
      running = false;
      await done;
      return peak;
    },
    now: () => readMem(pid),
  };
}

async function main(): Promise<void> {
  const o = parseArgs(Deno.args);
  const dir = await Deno.makeTempDir({ prefix: "odmr-rss-" });
  const procs: Spawned[] = [];
  let sink: SmtpSink | undefined;
  let fetchHeap: string | undefined;
  try {
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(
      config,
      `data_dir: ${dir}/data\nlog:\n  level: info\n  format: text\nsmtp:\n  listen: ["127.0.0.1:0"]\n` +
        `  max_message_size: 200MB\nodmr:\n  listen: ["127.0.0.1:0"]\n`,
    );
    const add = await odmrRelay(
      ["user", "add", BENCH_USER, "--domain", DOMAIN, "--password-stdin"],
      config,
      { stdin: `${BENCH_PASSWORD}\n` },
    );
    if (add.code !== 0) throw new Error(`user add: ${lastLine(add.output)}`);
    const t0 = performance.now();
    const serveHeap = `${dir}/serve-heap.jsonl`;
    const serve = spawn("serve", Deno.execPath(), [
      "run",
      "-A",
      V8_FLAGS,
      ...o.flags,
      `${PROJECT_ROOT}/bench/_heap_probe.ts`,
      "serve",
      "--config",
      config,
    ], { cwd: dir, env: { ODMR_HEAP_PROBE: serveHeap } });
    procs.push(serve);
    const smtp = await serve.waitForLine(/event=listening proto=smtp address=[^ ]*:(\d+)/, 30_000);
    const odmr = await serve.waitForLine(/event=listening proto=odmr address=[^ ]*:(\d+)/, 5_000);
    await sleep(300);
    const s = sampler("serve", serve.pid, t0);
    console.log(`serve started: VmHWM ${mb((await s.now())?.hwm ?? 0)} MB`);
    const bytes = Math.round(o.mb * 1024 * 1024);
    const src = await runSource(Number(smtp[1]), { sessions: 1, messages: 1, bytes }, {
      rcpt: `user@${DOMAIN}`,
      timeoutMs: 300_000,
    });
    await sleep(500);
    const afterIngest = await s.now();
    console.log(
      `ingest of ${o.mb} MiB: ${src.seconds.toFixed(2)} s; serve VmHWM ${
        mb(afterIngest?.hwm ?? 0)
      } MB` +
        `, VmRSS now ${mb(afterIngest?.rss ?? 0)} MB`,
    );
    if (o.drain) {
      sink = await SmtpSink.start();
      const fcfg = `${dir}/fetch.yaml`;
      const pw = `${dir}/fetch.password`;
      await Deno.writeTextFile(pw, `${BENCH_PASSWORD}\n`, { mode: 0o600 });
      await Deno.writeTextFile(
        fcfg,
        `data_dir: ${dir}/fetch-data\nlog:\n  level: warn\nsmtp:\n  max_message_size: 200MB\n` +
          `fetch:\n  server: 127.0.0.1:${odmr[1]}\n  tls: none\n  user: ${BENCH_USER}\n` +
          `  password_file: ${pw}\n  domains: [${DOMAIN}]\n  deliver_to: smtp://127.0.0.1:${sink.port}\n`,
      );
      const tf = performance.now();
      fetchHeap = `${dir}/fetch-heap.jsonl`;
      const fetch = spawn("fetch", Deno.execPath(), [
        "run",
        "-A",
        V8_FLAGS,
        ...o.flags,
        `${PROJECT_ROOT}/bench/_heap_probe.ts`,
        "fetch",
        "--once",
        "--config",
        fcfg,
      ], { cwd: dir, env: { ODMR_HEAP_PROBE: fetchHeap } });
      procs.push(fetch);
      const f = sampler("fetch", fetch.pid, t0);
      const code = await fetch.exited;
      const fpeak = await f.stop();
      const afterDrain = await s.now();
      console.log(
        `fetch --once exited ${code} after ${((performance.now() - tf) / 1000).toFixed(2)} s; ` +
          `fetch VmHWM ${mb(fpeak?.hwm ?? 0)} MB (last sample); serve VmHWM ${
            mb(afterDrain?.hwm ?? 0)
          } MB`,
      );
      if (code !== 0 || o.showOutput) console.log(fetch.tail.join("\n"));
      if (!(await sink.waitMessages(1, 5_000))) console.log("smtp-sink did not get the message");
    }
    await s.stop();
    printHeap("serve", await readHeapSamples(serveHeap));
    if (fetchHeap !== undefined) printHeap("fetch", await readHeapSamples(fetchHeap));
    if (o.showOutput) console.log(serve.tail.join("\n"));
  } finally {
    await sink?.stop();
    for (const p of procs) await stop(p, 5_000);
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
