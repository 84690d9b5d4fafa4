/**
 * The queue maintenance loop of `serve`: one bounded pass a minute (expiry with DSNs, removal
 * after the grace period, incremental vacuum, WAL truncation), plus the per-domain policy
 * lookups (retention, quota) that the loop and the SMTP sink share. A failed pass is logged
 * and the loop goes on; `stop()` waits for nothing but the timer.
 */
import type { Config, QuotaLimits } from "../config/types.ts";
import type { Logger } from "../observe/log.ts";
import type { MaintenanceOptions, MaintenanceReport } from "../queue/sqlite_store.ts";

/** Time between two passes. */
export const MAINTENANCE_INTERVAL_MS = 60_000;
/** Delay of the first pass after start (lets the listeners come up first). */
export const FIRST_PASS_DELAY_MS = 1_000;

/** The part of the store the loop uses. */
export interface Maintainable {
  maintain(opts: MaintenanceOptions): MaintenanceReport;
}

/** A running loop. */
export interface MaintenanceLoop {
  /** Runs one pass now (tests, and the first pass). */
  runOnce(): MaintenanceReport | undefined;
  /** Stops the timer; a pass never overlaps stop (passes are synchronous). */
  stop(): void;
}

/** Retention of `domain`: its `domains:` entry, else `queue.max_age`. */
export function maxAgeOf(config: Config, domain: string): number {
  return config.domains.get(domain)?.maxAgeMs ?? config.queue.maxAgeMs;
}

/** Quota of `domain`: its `domains:` entry, else `queue.quota`; undefined: no limit. */
export function quotaOf(config: Config, domain: string): QuotaLimits | undefined {
  const entry = config.domains.get(domain);
  return entry === undefined ? config.queue.quota : entry.quota;
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
  },
): MaintenanceLoop {
  const { config, log } = opts;
  const passOptions: MaintenanceOptions = {
    hostname: config.hostname,
    maxAgeMs: (domain) => maxAgeOf(config, domain),
    isLocalDomain: opts.isLocalDomain,
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  let isStopped = false;

  const runOnce = (): MaintenanceReport | undefined => {
    const startedAt = performance.now();
    try {
      const report = store.maintain(passOptions);
      opts.onReport?.(report);
      const busy = report.expiredRecipients + report.removedRecipients + report.vacuumedPages;
      if (busy > 0) {
        log.info("queue_maintenance", {
          expired: report.expiredRecipients,
          dsn_queued: report.dsnQueued,
          dsn_dropped: report.dsnDropped,
          removed: report.removedRecipients,
          vacuumed_pages: report.vacuumedPages,
          ms: Math.round(performance.now() - startedAt),
        });
      }
      return report;
    } catch (err) {
      log.error("queue_maintenance_failed", {
        reason: err instanceof Error ? err.message : String(err),
      });
      return undefined;
    }
  };

  const schedule = (delayMs: number) => {
    if (isStopped) return;
    timer = setTimeout(() => {
      runOnce();
      schedule(opts.intervalMs ?? MAINTENANCE_INTERVAL_MS);
    }, delayMs);
  };
  schedule(opts.firstDelayMs ?? FIRST_PASS_DELAY_MS);

  return {
    runOnce,
    stop() {
      isStopped = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
