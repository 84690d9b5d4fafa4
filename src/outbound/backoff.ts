/**
 * When a deferred outbound recipient is tried again: a growing step (1m, 5m, 15m, 30m, 1h, 2h,
 * then every 4h) spread by ±10% jitter, so a burst deferred together (one destination down)
 * does not come back as one burst. Pure: the clock and the random source are arguments. The
 * retrying ends at `outbound.max_age`, which the queue's maintenance enforces, not this.
 */

/** The default steps in milliseconds; the last one repeats (the cap). */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  60_000,
  5 * 60_000,
  15 * 60_000,
  30 * 60_000,
  60 * 60_000,
  2 * 60 * 60_000,
  4 * 60 * 60_000,
];

/** ±10%: enough to spread a burst, small enough that the schedule keeps its shape. */
export const RETRY_JITTER = 0.1;

/** How the delay is chosen; every field has a default. */
export interface BackoffOptions {
  /** Steps in milliseconds, at least one; the last repeats. Default: DEFAULT_RETRY_SCHEDULE_MS. */
  readonly scheduleMs?: readonly number[];
  /** Random source in [0, 1); default Math.random. */
  readonly random?: () => number;
}

/**
 * The wait after the `failures`-th failed attempt (1 for the first), jittered: the step
 * `scheduleMs[failures - 1]`, or the last step once the schedule is used up, times a factor in
 * [0.9, 1.1). At least one millisecond.
 */
export function retryDelayMs(failures: number, opts: BackoffOptions = {}): number {
  const schedule = opts.scheduleMs ?? DEFAULT_RETRY_SCHEDULE_MS;
  if (schedule.length === 0) throw new Error("retry schedule is empty");
  const index = Math.min(Math.max(Math.floor(failures), 1), schedule.length) - 1;
  const step = schedule[index] as number; // index is within [0, length - 1]
  const random = opts.random ?? Math.random;
  const factor = 1 + RETRY_JITTER * (2 * random() - 1);
  return Math.max(1, Math.round(step * factor));
}

/** The epoch milliseconds at which a recipient deferred for the `failures`-th time is due again. */
export function retryAt(now: number, failures: number, opts: BackoffOptions = {}): number {
  return now + retryDelayMs(failures, opts);
}
