// Drain benchmark (issue 4): N × 4 KB queued for one domain in `serve`, drained over one ATRN
// connection — by our `fetch --once` into smtp-sink, and by bench/_null_customer.ts
// (provider speed alone) — beside a private Postfix flushing the same N to smtp-sink.

import { BENCH_DOMAIN, type BenchContext } from "./ingest.ts";
import { PrivatePostfix } from "./_postfix.ts";
import { runNullCustomer } from "./_null_customer.ts";
import { BENCH_PASSWORD, BENCH_USER, lastLine, Serve } from "./_serve.ts";
import { SmtpSink } from "../tests/_helpers/smtp_sink.ts";
import { runSource, type SourceShape } from "./_smtp_source.ts";
import { fmtRate, fmtRatio, naCell, type Table } from "./_table.ts";

const N = 5000;
const KB = 1024;
const RCPT = `rcpt@${BENCH_DOMAIN}`;

/** Deadline for moving n messages once: 30 s plus 20 ms a message (≥ 10× the usual time). */
export function drainTimeoutMs(n: number): number {
  return 30_000 + n * 20;
}

/** Outcome of one drain: a rate, or why there is none. */
export type DrainResult = {
  ok: true;
  seconds: number;
  msgPerSec: number;
  /** SMTP sessions smtp-sink saw, when it was the receiver. */
  sinkSessions?: number;
} | {
  ok: false;
  reason: string;
};

/** The result of a drain that failed with `e` (its message, after `what: ` when given). */
export function failedDrain(e: unknown, what?: string): DrainResult {
  const message = e instanceof Error ? e.message : String(e);
  return { ok: false, reason: what === undefined ? message : `${what}: ${message}` };
}

/**
 * A drain of n messages into `sink` that took `seconds`: its rate once the sink holds all n
 * (it gets 5 s more for the last ones).
 */
export async function drainedInto(
  sink: SmtpSink,
  n: number,
  seconds: number,
): Promise<DrainResult> {
  if (!(await sink.waitMessages(n, 5_000))) {
    return { ok: false, reason: `smtp-sink got ${sink.messages()} of ${n} messages` };
  }
  return { ok: true, seconds, msgPerSec: n / seconds, sinkSessions: sink.sessions() };
}

/** Fills serve's queue with n × 4 KB for the bench domain (10 parallel sessions); returns msg/s. */
export async function fillServe(serve: Serve, n: number): Promise<number> {
  const shape: SourceShape = { sessions: 10, messages: n, bytes: 4 * KB };
  const r = await runSource(serve.smtpPort, shape, { rcpt: RCPT, timeoutMs: drainTimeoutMs(n) });
  return r.msgPerSec;
}

/** Runs `fetch --once` from serve into a fresh smtp-sink and times it (wall clock). */
export async function drainWithFetch(
  ctx: BenchContext,
  serve: Serve,
  n: number,
  tls: { mode: "none" | "implicit" | "starttls"; ca?: string; host?: string } = { mode: "none" },
): Promise<DrainResult> {
  const sink = await SmtpSink.start();
  ctx.defer(() => sink.stop());
  try {
    const r = await serve.fetchOnce({
      domain: BENCH_DOMAIN,
      deliverTo: `smtp://127.0.0.1:${sink.port}`,
      timeoutMs: drainTimeoutMs(n),
      tls: tls.mode,
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.host === undefined ? {} : { host: tls.host }),
    });
    if (r.code !== 0) {
      return { ok: false, reason: `fetch --once exited ${r.code}: ${lastLine(r.output)}` };
    }
    return await drainedInto(sink, n, r.ms / 1000);
  } catch (e) {
    return failedDrain(e, "fetch --once");
  } finally {
    await sink.stop();
  }
}

/**
 * One untimed `fetch --once` on the empty queue, as a customer polling from cron has run before:
 * Deno's code cache then holds fetch's modules compiled under its V8 flags (another `deno` run
 * with other flags, e.g. the tests or a script, replaces those entries), so the timed run that
 * follows does not compile them again. Its result is not used.
 */
export async function warmUpFetch(
  ctx: BenchContext,
  serve: Serve,
  tls: { mode: "none" | "implicit" | "starttls"; ca?: string; host?: string } = { mode: "none" },
): Promise<void> {
  await drainWithFetch(ctx, serve, 0, tls);
}

/** Drains the n messages of serve's bench domain with bench/_null_customer.ts, timed. */
export async function drainWithNullCustomer(
  serve: Serve,
  n: number,
  timeoutMs = drainTimeoutMs(n),
): Promise<DrainResult> {
  if (serve.odmrPort === undefined) return { ok: false, reason: "serve reported no ODMR listener" };
  try {
    const t0 = performance.now();
    const r = await runNullCustomer({
      port: serve.odmrPort,
      user: BENCH_USER,
      password: BENCH_PASSWORD,
      domain: BENCH_DOMAIN,
      timeoutMs,
    });
    const seconds = (performance.now() - t0) / 1000;
    if (r.messages !== n) {
      return { ok: false, reason: `got ${r.messages} of ${n} messages (ATRN: ${r.atrnReply})` };
    }
    return { ok: true, seconds, msgPerSec: n / seconds };
  } catch (e) {
    return failedDrain(e);
  }
}

/** Private Postfix: hold n × 4 KB, then release + `postqueue -f` to smtp-sink until empty. */
export async function drainPostfix(ctx: BenchContext, n: number): Promise<DrainResult> {
  const why = await PrivatePostfix.unavailable();
  if (why !== undefined) return { ok: false, reason: why };
  const sink = await SmtpSink.start();
  ctx.defer(() => sink.stop());
  let pf: PrivatePostfix | undefined;
  try {
    pf = await PrivatePostfix.start({
      dir: `${ctx.dir}/drain-postfix`,
      relayPort: sink.port,
      domain: BENCH_DOMAIN,
    });
    const started = pf;
    ctx.defer(() => started.stop());
    await runSource(pf.smtpPort, { sessions: 10, messages: n, bytes: 4 * KB }, {
      rcpt: RCPT,
      timeoutMs: drainTimeoutMs(n),
    });
    const seconds = await pf.timedRelease(n, drainTimeoutMs(n));
    if (seconds === undefined) {
      return { ok: false, reason: `queue not empty after ${drainTimeoutMs(n) / 1000} s` };
    }
    return await drainedInto(sink, n, seconds);
  } catch (e) {
    return failedDrain(e);
  } finally {
    await pf?.stop();
    await sink.stop();
  }
}

/** Table cell for a drain result. */
export function rateCell(r: DrainResult): string {
  return r.ok ? fmtRate(r.msgPerSec) : naCell(r.reason);
}

/** Seconds cell for a drain result. */
export function secondsCell(r: DrainResult): string {
  return r.ok ? r.seconds.toFixed(2) : "";
}

/** Runs the drain benchmark. */
export async function drainBench(ctx: BenchContext): Promise<Table[]> {
  const n = Math.max(1, Math.round(N / ctx.scale));
  const notes: string[] = [];
  let fetchResult: DrainResult;
  let nullResult: DrainResult;
  try {
    const serve = await Serve.start({ dir: `${ctx.dir}/drain`, domain: BENCH_DOMAIN });
    ctx.defer(() => serve.stop());
    await warmUpFetch(ctx, serve);
    notes.push(
      `queue filled by smtp-source at ${fmtRate(await fillServe(serve, n))} msg/s (untimed)`,
    );
    fetchResult = await drainWithFetch(ctx, serve, n);
    if (!fetchResult.ok) {
      // Whatever fetch left behind stays queued; the null customer takes all of it.
      notes.push("fetch --once failed, so the null customer drains the same queue");
    } else {
      notes.push(`queue refilled for the null customer`);
      await fillServe(serve, n);
    }
    nullResult = await drainWithNullCustomer(serve, n);
    await serve.stop();
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    fetchResult = { ok: false, reason };
    nullResult = { ok: false, reason };
  }
  const postfix = await drainPostfix(ctx, n);
  const ratio = (r: DrainResult) =>
    fmtRatio(r.ok ? r.msgPerSec : undefined, postfix.ok ? postfix.msgPerSec : undefined);
  return [{
    title: `Drain (${n} × 4 KB for one domain → smtp-sink)`,
    headers: ["drained by", "connections", "seconds", "msg/s", "vs Postfix"],
    rows: [
      [
        "ours: fetch --once → smtp-sink",
        fetchResult.ok ? `1 ATRN, ${fetchResult.sinkSessions ?? "?"} to smtp-sink` : "1 ATRN",
        secondsCell(fetchResult),
        rateCell(fetchResult),
        ratio(fetchResult),
      ],
      [
        "ours: null customer (provider only)",
        "1 ATRN",
        secondsCell(nullResult),
        rateCell(nullResult),
        ratio(nullResult),
      ],
      [
        "Postfix: postsuper -H + postqueue -f",
        postfix.ok ? `${postfix.sinkSessions ?? "?"} to smtp-sink` : "",
        secondsCell(postfix),
        rateCell(postfix),
        "1.00×",
      ],
    ],
    notes: [
      ...notes,
      "fetch --once: wall clock of the process, Deno start-up and AUTH included",
      "null customer: bench/_null_customer.ts in the bench process (CRAM-MD5, ATRN, then 250 " +
      "to everything, bodies discarded): the provider's drain speed without a local hand-off",
      "Postfix: from release of the held queue until the queue directory is empty",
    ],
  }];
}
