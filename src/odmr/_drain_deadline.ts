/**
 * The drain's deadline on progress (`odmr.drain_timeout`, README "Configuration"): the customer
 * must finish a message (its final reply, whatever it says) within `timeoutMs` of the previous
 * one, or of the reversal, plus one second for every MIN_DRAIN_BYTES_PER_SECOND octets of the
 * messages in flight (a big body on a slow line is progress too, at the MX's own floor of
 * 10 KB/s). Each wait on the customer is bounded by `smtp.timeout` already; their sum was not:
 * a customer answering each command just in time held its domains' lease as long as the queue
 * lasted. A drain that keeps finishing messages runs as long as it has mail (SECURITY.md).
 * One timer at a time, moved on lazily: nothing per message but arithmetic.
 */

/** Octets a second of body the deadline allows for (as the MX's `dataDeadlineMs`). */
export const MIN_DRAIN_BYTES_PER_SECOND = 10_000;

/** Default of `odmr.drain_timeout`. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 10 * 60_000;

/** The deadline of one drain; `expired` runs once when it passes. */
export class DrainDeadline {
  readonly #timeoutMs: number;
  readonly #expired: () => void;
  readonly #now: () => number;
  #lastProgressAt: number;
  #bytesInFlight = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #hasExpired = false;
  #finishedCount = 0;

  constructor(timeoutMs: number, expired: () => void, now: () => number = Date.now) {
    this.#timeoutMs = timeoutMs;
    this.#expired = expired;
    this.#now = now;
    this.#lastProgressAt = now();
    this.#arm();
  }

  /** When the drain is cut unless a message is finished first. */
  get deadline(): number {
    return this.#lastProgressAt + this.#timeoutMs +
      this.#bytesInFlight * 1000 / MIN_DRAIN_BYTES_PER_SECOND;
  }

  get hasExpired(): boolean {
    return this.#hasExpired;
  }

  /** Messages finished so far. */
  get finishedCount(): number {
    return this.#finishedCount;
  }

  /** A message of `size` octets goes out. */
  sent(size: number): void {
    this.#bytesInFlight += size;
  }

  /** The customer finished a message of `size` octets (its final reply came). */
  finished(size: number): void {
    this.#bytesInFlight = Math.max(0, this.#bytesInFlight - size);
    this.#finishedCount++;
    this.#lastProgressAt = this.#now();
  }

  /** The drain is over: no expiry any more. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    const wait = Math.max(0, this.deadline - this.#now());
    this.#timer = setTimeout(() => this.#check(), Math.min(wait, MAX_TIMER_MS));
  }

  #check(): void {
    this.#timer = undefined;
    if (this.#now() < this.deadline) return this.#arm();
    this.#hasExpired = true;
    this.#expired();
  }
}

/** setTimeout's longest delay (2^31 - 1 ms); a longer wait is taken in steps. */
const MAX_TIMER_MS = 2_147_483_647;
