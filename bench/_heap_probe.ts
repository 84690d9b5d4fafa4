// Entry point that runs the CLI like main.ts and appends Deno.memoryUsage() (rss, heapTotal,
// heapUsed, external) to the file named by ODMR_HEAP_PROBE every 250 ms, one JSON object a
// line with the time since start. bench/rss.ts and bench/memory.ts start serve through it to
// set V8's heap beside the process's RSS. Benchmarks only: the product never imports this.

import { runCli } from "../src/cli/main.ts";

const SAMPLE_MS = 250;

/** One line of the probe file. */
export interface HeapSample {
  readonly t: number;
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
}

/** Reads a probe file written by this entry point. */
export async function readHeapSamples(path: string): Promise<HeapSample[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as HeapSample);
}

if (import.meta.main) {
  const out = Deno.env.get("ODMR_HEAP_PROBE");
  if (out !== undefined) {
    const file = await Deno.open(out, { write: true, create: true, truncate: true });
    const enc = new TextEncoder();
    const t0 = performance.now();
    const timer = setInterval(() => {
      const m = Deno.memoryUsage();
      const t = Math.round(performance.now() - t0);
      file.writeSync(enc.encode(JSON.stringify({ t, ...m }) + "\n"));
    }, SAMPLE_MS);
    Deno.unrefTimer(timer);
  }
  Deno.exit(await runCli(Deno.args));
}
