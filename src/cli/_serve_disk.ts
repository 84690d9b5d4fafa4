/**
 * Whether the SQLite queue's disk is full, for /healthz: a message refused for lack of space
 * (`452 4.3.1`: SQLITE_FULL or ENOSPC, the queue sink tells) makes serve unhealthy (`503 disk
 * full …`), as a failed sync does, until a message is stored again (a group COMMIT at level
 * `full`) or FULL_HOLD_MS pass without another refusal (space may come back while nobody sends).
 * Also while the space reserve is spent (src/queue/space_reserve.ts): every new message would be
 * refused then, whether or not one was yet.
 * The refusals themselves are logged (`queue_write_failed`) and counted
 * (`odmr_relay_messages_refused_total{reason="storage_full"}`). Only refusals and group COMMITs
 * touch it.
 */
import type { CommitLevel } from "../queue/_group_tx.ts";

/** How long one refusal keeps /healthz at 503 when no message is stored after it. */
export const FULL_HOLD_MS = 60_000;

/** The disk-full state of one serve's queue. */
export class DiskFullness {
  readonly #now: () => number;
  /** The first refusal since a message was last stored; undefined: not full. */
  #since: number | undefined;
  #last = 0;
  readonly #mailWaits: () => boolean;

  /** `mailWaits`: true while new mail is refused for want of room (the spent reserve). */
  constructor(now: () => number = Date.now, mailWaits: () => boolean = () => false) {
    this.#now = now;
    this.#mailWaits = mailWaits;
  }

  /** A message was refused for lack of space. */
  readonly refused = (): void => {
    this.#last = this.#now();
    this.#since ??= this.#last;
  };

  /** After each group COMMIT: one that stored messages (`full`) shows there is room again. */
  readonly committed = (level: CommitLevel): void => {
    if (level === "full") this.#since = undefined;
  };

  /** Why /healthz answers 503, or undefined. */
  reason(): string | undefined {
    if (this.#mailWaits()) {
      return "disk full: the space reserve is spent, new messages are refused with 452 4.3.1";
    }
    if (this.#since === undefined || this.#now() - this.#last >= FULL_HOLD_MS) return undefined;
    return `disk full: messages refused with 452 4.3.1 since ${
      new Date(this.#since).toISOString()
    }`;
  }
}
