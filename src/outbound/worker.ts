/**
 * The outbound worker of `serve`: claims due destinations (up to `concurrency` at a time),
 * works each through one connection (`_batch.ts`), and sleeps until the queue's next due
 * recipient (capped) or until woken by a submission that queued mail for the world. `stop()`
 * takes no further message, lets the messages in flight finish within the grace period, then
 * cuts the connections; everything not settled stays queued for the next start.
 */
import type { QueueStore } from "../queue/types.ts";
import type { Logger } from "../observe/log.ts";
import { type BatchCounts, type BatchOptions, runBatch } from "./_batch.ts";

export type { FailedRecipient, KeysFor, OutboundEvents } from "./_batch.ts";

/** The worker's settings; every field but the store, the log, the owner and `batch` has a default. */
export interface OutboundWorkerOptions {
  readonly store: QueueStore;
  readonly log: Logger;
  /** Lease owner (node and process). */
  readonly owner: string;
  readonly batch: Omit<BatchOptions, "log" | "leaseSeconds" | "now">;
  /** Destinations delivered at the same time (default 4). */
  readonly concurrency?: number;
  /** Outbound lease length; renewed while a batch runs (default 300 s). */
  readonly leaseSeconds?: number;
  /** Longest sleep without a wake-up (default 30 s): mail queued by another node is seen. */
  readonly maxSleepMs?: number;
  readonly now?: () => number;
}

export const DEFAULT_OUTBOUND_CONCURRENCY = 4;
const DEFAULT_LEASE_SECONDS = 300;
const DEFAULT_MAX_SLEEP_MS = 30_000;
/**
 * A due destination under another node's lease is looked at again after this, not in a loop
 * (ours wake the loop when their batch ends).
 */
const MIN_SLEEP_MS = 1_000;
/** After a cut, batches get this long to notice before stop() returns anyway. */
const AFTER_CUT_WAIT_MS = 2_000;

/** The running worker. */
export class OutboundWorker {
  readonly #opts: OutboundWorkerOptions;
  readonly #now: () => number;
  readonly #active = new Set<Promise<BatchCounts>>();
  readonly #stop = new AbortController();
  readonly #cut = new AbortController();
  #wakeUp: (() => void) | undefined;
  #isWoken = false;
  #loop: Promise<void> | undefined;

  constructor(opts: OutboundWorkerOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** Starts the loop (once). */
  start(): void {
    this.#loop ??= this.#run().catch((err) => {
      // A bug: the loop itself catches every store failure.
      this.#opts.log.error("outbound_worker_failed", { error: String(err) });
    });
  }

  /** New mail for the world is queued: look at once instead of at the end of the sleep. */
  wake(): void {
    this.#isWoken = true;
    this.#wakeUp?.();
  }

  /** Batches running now. */
  get activeBatches(): number {
    return this.#active.size;
  }

  /**
   * Stops: no further message is taken; messages in flight get up to `graceMs` to finish,
   * then their connections are dropped. Unsettled recipients stay queued.
   */
  async stop(graceMs: number): Promise<void> {
    this.#stop.abort();
    this.wake();
    await this.#loop;
    if (!(await this.#allDone(graceMs))) {
      this.#opts.log.warn("outbound_cut", { batches: this.#active.size, grace_ms: graceMs });
      this.#cut.abort();
      await this.#allDone(AFTER_CUT_WAIT_MS);
    }
  }

  async #allDone(ms: number): Promise<boolean> {
    if (this.#active.size === 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<false>((r) => timer = setTimeout(() => r(false), ms));
    try {
      return await Promise.race([Promise.allSettled([...this.#active]).then(() => true), expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #run(): Promise<void> {
    const { store, log } = this.#opts;
    const concurrency = this.#opts.concurrency ?? DEFAULT_OUTBOUND_CONCURRENCY;
    const leaseSeconds = this.#opts.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    const maxSleepMs = this.#opts.maxSleepMs ?? DEFAULT_MAX_SLEEP_MS;
    let failures = 0;
    while (!this.#stop.signal.aborted) {
      this.#isWoken = false;
      let sleepMs: number;
      try {
        while (this.#active.size < concurrency && !this.#stop.signal.aborted) {
          const lease = await store.claimOutbound({
            owner: this.#opts.owner,
            leaseSeconds,
            now: this.#now(),
          });
          if (lease === undefined) break;
          this.#track(runBatch(lease, {
            ...this.#opts.batch,
            log,
            leaseSeconds,
            now: this.#now,
          }, { stop: this.#stop.signal, cut: this.#cut.signal }));
        }
        if (this.#active.size >= concurrency) {
          sleepMs = maxSleepMs; // woken when a batch ends
        } else {
          const next = await store.nextOutboundAt();
          sleepMs = next === undefined
            ? maxSleepMs
            : Math.min(maxSleepMs, Math.max(MIN_SLEEP_MS, next - this.#now()));
        }
        failures = 0;
      } catch (err) {
        // The queue is not answering: try again later, a little later each time.
        failures++;
        sleepMs = Math.min(maxSleepMs, 1000 * 2 ** Math.min(failures, 5));
        log.error("outbound_claim_failed", { error: String(err), retry_ms: sleepMs });
      }
      if (!this.#isWoken) await this.#sleep(sleepMs);
    }
  }

  #track(batch: Promise<BatchCounts>): void {
    this.#active.add(batch);
    void batch.then((counts) => {
      this.#active.delete(batch);
      // A slot is free (and the destination may have more due): look again. A batch that
      // found nothing to send does not wake the loop (no claim loop without progress).
      if (counts.messages > 0) this.wake();
    }, (err) => {
      this.#active.delete(batch);
      this.#opts.log.error("outbound_batch_failed", { error: String(err) });
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wakeUp = done;
    });
  }
}
