/**
 * Keeps a lease renewed while its holder works: the ATRN drain (src/odmr/drain.ts) and the
 * outbound batch (src/outbound/_batch.ts). On a timer every third of the lease, not between
 * messages: one message may wait longer than the lease for its final reply (up to 10 minutes), and
 * a lease run out under a healthy holder lets the next claim take the domain and send the message
 * in flight again. A renewal that failed (the queue did not answer) is tried again at the next
 * tick; once one is overdue (`isDue`), the holder renews before its next message and stops when
 * that fails. One renewal runs at a time, and `stop` waits for one still on its way, so that none
 * reaches the queue after the holder released the lease.
 */
import type { LogFields, Logger } from "../observe/log.ts";
import type { Lease } from "./types.ts";

/** What `LeaseRenewal` is given. */
export interface LeaseRenewalOptions {
  readonly lease: Pick<Lease, "renew">;
  readonly leaseSeconds: number;
  readonly log: Logger;
  /** Fields of its `lease_lost` and `lease_renew_failed` lines (who holds the lease). */
  readonly fields: LogFields;
  /** Told once, when the lease was lost (taken by another owner, or expired). */
  readonly onLost?: () => void;
  readonly now?: () => number;
}

/** The renewals of one lease, from construction to `stop`. */
export class LeaseRenewal {
  readonly #opts: LeaseRenewalOptions;
  readonly #now: () => number;
  readonly #everyMs: number;
  readonly #timer: ReturnType<typeof setInterval>;
  #renewAt: number;
  #renewing: Promise<boolean> | undefined;
  #isLost = false;

  constructor(opts: LeaseRenewalOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#everyMs = Math.max(1000, (opts.leaseSeconds * 1000) / 3);
    this.#renewAt = this.#now() + this.#everyMs;
    this.#timer = setInterval(() => {
      if (!this.#isLost) void this.renew();
    }, this.#everyMs);
  }

  /** The lease was lost: nothing more may be sent under it. */
  get isLost(): boolean {
    return this.#isLost;
  }

  /** A renewal is overdue (the timer's last one failed, or did not come). */
  get isDue(): boolean {
    return this.#now() >= this.#renewAt;
  }

  /**
   * Renews now (one renewal at a time); false once the lease is lost or when the queue did not
   * answer (logged).
   */
  renew(): Promise<boolean> {
    const { lease, log, fields } = this.#opts;
    return this.#renewing ??= lease.renew().then((isRenewed) => {
      if (isRenewed) this.#renewAt = this.#now() + this.#everyMs;
      else if (!this.#isLost) {
        this.#isLost = true;
        log.warn("lease_lost", fields);
        this.#opts.onLost?.();
      }
      return isRenewed;
    }, (err) => {
      log.error("lease_renew_failed", { ...fields, error: String(err) });
      return false;
    }).finally(() => {
      this.#renewing = undefined;
    });
  }

  /** Stops the timer; resolves once a renewal still on its way came back. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#renewing;
  }
}
