/**
 * `fetch [--once]`: the customer command (README.md). One poll with `--once` (its exit code
 * is the poll's), else a poll every `fetch.interval`, with capped exponential backoff and
 * jitter after failures. SIGTERM/SIGINT lets the message in flight finish (or abandons it, so
 * it stays on the provider) and exits 0.
 */
import type { Config } from "../config/types.ts";
import { safe } from "./_text.ts";
import { createProcessLogger, notice } from "../observe/log.ts";
import type { Logger } from "../observe/log.ts";
import { DEFAULT_MAX_MESSAGE_BYTES, runCustomer } from "../odmr/customer.ts";
import type { FetchOutcome } from "../odmr/customer.ts";
import type { PollStart } from "../odmr/customer_start.ts";
import type { MetricsServer } from "../observe/http.ts";

/** First wait after a failed poll; doubles with each further failure. */
export const BACKOFF_BASE_MS = 30_000;
/** Longest wait after failures. */
export const BACKOFF_CAP_MS = 30 * 60_000;
/**
 * Polls in a row while recipients were split off (LMTP: one recipient per transaction, the
 * rest answered 452 and kept queued by the provider); bounds the loop.
 */
export const MAX_SPLIT_ROUNDS = 100;

/** The wait before the next poll after `failures` failed polls in a row (equal jitter). */
export function backoffDelayMs(failures: number, random: () => number = Math.random): number {
  const full = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1));
  return Math.round(full / 2 + (full / 2) * random());
}

/** Runs `fetch`; resolves with the exit code. */
export async function fetchCommand(
  config: Config,
  opts: {
    once: boolean;
    stderr: (text: string) => void;
    /** The first poll's files and connection, already there (src/cli/main.ts). */
    start?: PollStart;
    /** Aborted by a signal that came before this command's own listeners (src/cli/main.ts). */
    controller?: AbortController;
    /** Called once this command listens to SIGTERM/SIGINT itself. */
    onSignalsTaken?: () => void;
  },
): Promise<number> {
  const fetch = config.fetch;
  if (fetch === undefined) {
    opts.stderr(
      `error: Cannot run fetch: the config has no fetch section` +
        ` (${config.source === undefined ? "embedded defaults" : `"${config.source}"`})\n`,
    );
    return 2;
  }
  const log = createProcessLogger({ level: config.log.level, format: config.log.format })
    .with({ cmd: "fetch" });
  const controller = opts.controller ?? new AbortController();
  if (controller.signal.aborted) log.info("signal_received", {});
  const onSignal = () => {
    if (!controller.signal.aborted) log.info("signal_received", {});
    controller.abort();
  };
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  opts.onSignalsTaken?.();
  let metricsServer: MetricsServer | undefined;
  try {
    const poll = (start?: PollStart) =>
      pollRounds({ ...fetch, hostname: config.hostname }, config, log, controller, start);
    if (opts.once) {
      const outcome = await poll(opts.start);
      if (outcome.wasStopped) return 0;
      if (outcome.exitCode !== 0) opts.stderr(`error: ${safe(outcome.message)}\n`);
      return outcome.exitCode;
    }
    // Loop mode only: a --once run exits before anything could scrape it.
    // prom-client is loaded only when metrics are served (start-up time and resident memory).
    const metrics = config.metrics === undefined
      ? undefined
      : new (await import("../observe/metrics.ts")).FetchMetrics();
    if (metrics !== undefined && config.metrics !== undefined) {
      const { host, port } = config.metrics.listen;
      try {
        // node:net too is loaded only for a metrics listener.
        const { startMetricsServer } = await import("../observe/http.ts");
        metricsServer = await startMetricsServer({ host, port, metrics });
      } catch (err) {
        const shown = host.includes(":") ? `[${host}]` : host;
        opts.stderr(`error: Cannot listen on metrics ${shown}:${port}: ${String(err)}\n`);
        return 1;
      }
      notice(log, "listening", { proto: "metrics", address: metricsServer.address, tls: "none" });
    }
    let failures = 0;
    while (!controller.signal.aborted) {
      const outcome = await poll();
      if (controller.signal.aborted) break;
      metrics?.recordPoll(outcome);
      if (outcome.exitCode === 2) {
        opts.stderr(`error: ${safe(outcome.message)}\n`);
        return 2;
      }
      failures = outcome.exitCode === 0 ? 0 : failures + 1;
      const waitMs = failures === 0 ? fetch.intervalMs : backoffDelayMs(failures);
      log.info("next_poll", { inMs: waitMs, failures, exitCode: outcome.exitCode });
      await sleep(waitMs, controller.signal);
    }
    log.info("stopped", {});
    return 0;
  } finally {
    await metricsServer?.close();
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGINT", onSignal);
  }
}

/** One poll, repeated at once while the local side split recipients off (bounded). */
async function pollRounds(
  fetch: NonNullable<Config["fetch"]> & { hostname: string },
  config: Config,
  log: Logger,
  controller: AbortController,
  start: PollStart | undefined,
): Promise<FetchOutcome> {
  let outcome: FetchOutcome | undefined;
  for (let round = 0; round < MAX_SPLIT_ROUNDS; round++) {
    const next = await runCustomer(fetch, {
      log,
      signal: controller.signal,
      // Not the MX's limit: the provider stores a message with its Received: header on top, so
      // one its MX took at smtp.max_message_size is larger here; refused, it would be bounced.
      // The local MTA applies its own limit (README.md "The customer: fetch").
      maxMessageBytes: Math.max(DEFAULT_MAX_MESSAGE_BYTES, config.smtp.maxMessageSize),
      ...(round === 0 && start !== undefined ? { start } : {}),
    });
    outcome = outcome === undefined ? next : merge(outcome, next);
    const level = next.exitCode === 0 ? "info" : "warn";
    log[level]("poll_done", {
      exitCode: next.exitCode,
      result: next.result,
      message: next.message,
    });
    if (next.exitCode !== 0 || next.split === 0 || controller.signal.aborted) break;
  }
  return outcome as FetchOutcome; // the loop runs at least once
}

/** Counts add up; the last poll decides the exit code (a 453 after splits is still 0). */
function merge(a: FetchOutcome, b: FetchOutcome): FetchOutcome {
  return {
    ...b,
    messages: a.messages + b.messages,
    delivered: a.delivered + b.delivered,
    deferred: a.deferred + b.deferred,
    failed: a.failed + b.failed,
    foreign: a.foreign + b.foreign,
    split: b.split,
    result: b.result === "noMail" && a.result === "delivered" ? "delivered" : b.result,
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
