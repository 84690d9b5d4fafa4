// Fetch benchmark (issue 5): end to end, `serve` → our `fetch --once` → smtp-sink with N × 4 KB,
// and fetchmail in ODMR mode draining the same kind of queue in the same run (a smaller N:
// fetchmail forwards about 22 msg/s, so 500 messages already take ~25 s).

import { BENCH_DOMAIN, type BenchContext } from "./ingest.ts";
import {
  drainedInto,
  type DrainResult,
  drainWithFetch,
  failedDrain,
  fillServe,
  rateCell,
  secondsCell,
} from "./drain.ts";
import { runCommand } from "./_proc.ts";
import { findTool } from "../tests/_helpers/tools.ts";
import { lastLine, Serve } from "./_serve.ts";
import { SmtpSink } from "../tests/_helpers/smtp_sink.ts";
import { fmtRatio, type Table } from "./_table.ts";

const N_FETCH = 5000;
const N_FETCHMAIL = 500;

/** Runs fetchmail (ODMR, optionally `ssl`) from serve into a fresh smtp-sink and times it. */
export async function drainWithFetchmail(
  ctx: BenchContext,
  serve: Serve,
  n: number,
  ssl = false,
): Promise<DrainResult> {
  const fetchmail = await findTool("fetchmail");
  if (fetchmail === undefined) return { ok: false, reason: "fetchmail not installed" };
  const sink = await SmtpSink.start();
  ctx.defer(() => sink.stop());
  try {
    const rc = await serve.fetchmailRc({ domain: BENCH_DOMAIN, smtpHostPort: sink.port, ssl });
    // Bounded: twice the expected ~22 msg/s time, plus a minute.
    const timeoutMs = 60_000 + Math.ceil(n / 22) * 2000;
    const home = `${serve.root}/fetchmail-home`;
    await Deno.mkdir(home, { recursive: true, mode: 0o700 });
    const r = await runCommand(fetchmail, ["-f", rc, "--nosyslog", "--nodetach"], timeoutMs, {
      env: { HOME: home, FETCHMAILHOME: home },
    });
    // fetchmail exits 0 after delivering, 1 when there was nothing to take (ATRN 453).
    if (r.code !== 0) {
      return { ok: false, reason: `fetchmail exited ${r.code}: ${lastLine(r.output)}` };
    }
    return await drainedInto(sink, n, r.ms / 1000);
  } catch (e) {
    return failedDrain(e);
  } finally {
    await sink.stop();
  }
}

/** Runs the fetch-vs-fetchmail benchmark. */
export async function fetchBench(ctx: BenchContext): Promise<Table[]> {
  const nFetch = Math.max(1, Math.round(N_FETCH / ctx.scale));
  const nFetchmail = Math.max(1, Math.round(N_FETCHMAIL / ctx.scale));
  const failed = (reason: string): DrainResult => ({ ok: false, reason });
  let big: DrainResult = failed("not run");
  let small: DrainResult = failed("not run");
  let fm: DrainResult = failed("not run");
  try {
    const serve = await Serve.start({ dir: `${ctx.dir}/fetch`, domain: BENCH_DOMAIN });
    ctx.defer(() => serve.stop());
    await fillServe(serve, nFetchmail);
    fm = await drainWithFetchmail(ctx, serve, nFetchmail);
    if (fm.ok) await fillServe(serve, nFetchmail);
    // If fetchmail failed, whatever it left is still queued and fetch takes it now.
    small = await drainWithFetch(ctx, serve, nFetchmail);
    if (small.ok) {
      await fillServe(serve, nFetch);
      big = await drainWithFetch(ctx, serve, nFetch);
    } else {
      big = failed("skipped: fetch --once failed on the smaller queue");
    }
    await serve.stop();
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    if (!fm.ok && fm.reason === "not run") fm = failed(reason);
    if (!small.ok && small.reason === "not run") small = failed(reason);
    if (!big.ok && big.reason === "not run") big = failed(reason);
  }
  const fmRate = fm.ok ? fm.msgPerSec : undefined;
  const ratio = (r: DrainResult) => fmtRatio(r.ok ? r.msgPerSec : undefined, fmRate);
  return [{
    title: "Fetch: serve → customer → smtp-sink, ours vs fetchmail (4 KB messages)",
    headers: ["customer", "messages", "seconds", "msg/s", "vs fetchmail"],
    rows: [
      ["ours: fetch --once", String(nFetch), secondsCell(big), rateCell(big), ratio(big)],
      ["ours: fetch --once", String(nFetchmail), secondsCell(small), rateCell(small), ratio(small)],
      ["fetchmail (protocol ODMR)", String(nFetchmail), secondsCell(fm), rateCell(fm), "1.00×"],
    ],
    notes: [
      "one ATRN session each over plain TCP on 127.0.0.1; wall clock of the customer process",
      "fetchmail: rc with protocol ODMR, fetchdomains, smtphost 127.0.0.1/PORT, --nosyslog",
      "target (issue 5): fetch ≥ 20× fetchmail",
    ],
  }];
}
