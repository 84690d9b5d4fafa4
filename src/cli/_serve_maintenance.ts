/**
 * The queue maintenance loop of `serve`: one bounded pass a minute (expiry with DSNs, removal
 * after the grace period, incremental vacuum, WAL truncation). A failed pass is logged and the
 * loop goes on; passes never overlap; `stop()` waits for a pass in progress.
 */
import { errorText } from "../errors.ts";
import type { Config } from "../config/types.ts";
import { maxAgeOf } from "../config/policy.ts";
import type { Logger } from "../observe/log.ts";
import type { MaintenanceOptions, MaintenanceReport } from "../queue/types.ts";
import { type BounceLimiter, nodeBounceLimiter } from "../queue/bounce.ts";

/** Time between two passes. */
export const MAINTENANCE_INTERVAL_MS = 60_000;
/** Delay of the first pass after start (lets the listeners come up first). */
export const FIRST_PASS_DELAY_MS = 1_000;

/** The part of the store the loop uses. */
export interface Maintainable {
  maintain(opts: MaintenanceOptions): Promise<MaintenanceReport>;
}

/** A running loop. */
export interface MaintenanceLoop {
  /** Runs one pass now (tests, and the first pass); undefined when it failed. */
  runOnce(): Promise<MaintenanceReport | undefined>;
  /** Stops the timer and waits for a pass in progress (the store may be closed after). */
  stop(): Promise<void>;
}

/** Starts the loop; the caller stops it before closing the store. */
export function startMaintenance(
  store: Maintainable,
  opts: {
    readonly config: Config;
    readonly isLocalDomain: (domain: string) => boolean;
    readonly log: Logger;
    /** Told about every finished pass (metrics). */
    readonly onReport?: (report: MaintenanceReport) => void;
    readonly intervalMs?: number;
    readonly firstDelayMs?: number;
    /** Reports to foreign senders; default the node's limiter, shared with the drain and worker. */
    readonly limiter?: BounceLimiter;
  },
): MaintenanceLoop {
  const { config, log } = opts;
  const passOptions: MaintenanceOptions = {
    hostname: config.hostname,
    maxAgeMs: (domain) => maxAgeOf(config, domain),
    isLocalDomain: opts.isLocalDomain,
    outboundMaxAgeMs: config.outbound.maxAgeMs,
    delayNoticeMs: config.outbound.delayNoticeMs,
    foreignBounceBudget: 0,
  };
  const limiter = opts.limiter ?? nodeBounceLimiter();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let isStopped = false;
  let running: Promise<unknown> = Promise.resolve();

  const pass = async (): Promise<MaintenanceReport | undefined> => {
    const startedAt = performance.now();
    try {
      // Each pass may spend what the node's foreign-bounce limit has left this hour.
      const report = await store.maintain({
        ...passOptions,
        foreignBounceBudget: Math.max(0, limiter.available()),
      });
      limiter.spend(report.foreignDsnQueued);
      opts.onReport?.(report);
      const busy = report.expiredRecipients + report.removedRecipients + report.vacuumedPages +
        report.delayNotices;
      if (busy > 0) {
        log.info("queue_maintenance", {
          expired: report.expiredRecipients,
          dsn_queued: report.dsnQueued,
          dsn_dropped: report.dsnDropped,
          delay_notices: report.delayNotices,
          removed: report.removedRecipients,
          vacuumed_pages: report.vacuumedPages,
          ms: Math.round(performance.now() - startedAt),
        });
      }
      return report;
    } catch (err) {
      log.error("queue_maintenance_failed", {
        reason: errorText(err),
      });
      return undefined;
    }
  };

  /** One pass after any pass in progress (never two at once); never rejects. */
  const runOnce = (): Promise<MaintenanceReport | undefined> => {
    const next = running.then(pass);
    running = next;
    return next;
  };

  const schedule = (delayMs: number) => {
    if (isStopped) return;
    timer = setTimeout(() => {
      timer = undefined;
      runOnce().then(() => schedule(opts.intervalMs ?? MAINTENANCE_INTERVAL_MS));
    }, delayMs);
  };
  schedule(opts.firstDelayMs ?? FIRST_PASS_DELAY_MS);

  return {
    runOnce,
    async stop() {
      isStopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}
