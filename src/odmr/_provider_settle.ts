/**
 * The drain's settlements, recorded together: the results the sender reports during one turn
 * of the event loop (the customer answers several pipelined messages at once) go to the queue in
 * one `Lease.settle` call, so one savepoint (SQLite) or one statement per outcome (PostgreSQL)
 * serves them all instead of one per message. Each message's follow-up (its failure DSN) runs
 * only once its batch is recorded; a batch that cannot be recorded is reported per message, and
 * those recipients stay queued (sent again: a duplicate, never a loss). Durability is the
 * lease's: settlements are not synced (src/queue/_group_tx.ts), before or after batching.
 */
import { clearImmediate, setImmediate } from "node:timers";
import type { Lease, Settlement } from "../queue/types.ts";

/** One message's settlements and what follows once they are recorded. */
interface Pending {
  readonly settlements: readonly Settlement[];
  /** Runs once the batch holding them is recorded (absent: nothing follows). */
  readonly recorded?: () => Promise<void>;
  /** Runs instead when it could not be. */
  readonly failed: (error: unknown) => void;
}

/** Batches one lease's settlements by turn of the event loop. */
export class SettleBatcher {
  readonly #lease: Pick<Lease, "settle">;
  #pending: Pending[] = [];
  #immediate: ReturnType<typeof setImmediate> | undefined;
  /** Batches not done yet (a long drain must not keep every promise). */
  readonly #batches = new Set<Promise<void>>();

  constructor(lease: Pick<Lease, "settle">) {
    this.#lease = lease;
  }

  /** Queues one message's settlements for the batch recorded at the end of this turn. */
  add(pending: Pending): void {
    this.#pending.push(pending);
    this.#immediate ??= setImmediate(() => {
      this.#immediate = undefined;
      this.flush();
    });
  }

  /** Records what is queued now, as one batch. */
  flush(): void {
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return;
    const all = batch.flatMap((p) => p.settlements);
    const recording = this.#lease.settle(all).then(
      async () => {
        const following: Promise<void>[] = [];
        for (const p of batch) if (p.recorded !== undefined) following.push(p.recorded());
        if (following.length > 0) await Promise.all(following);
      },
      (error) => {
        for (const p of batch) p.failed(error);
      },
    );
    this.#batches.add(recording);
    // A follow-up that failed stays, for `settled()` to raise; handled here meanwhile.
    recording.then(() => this.#batches.delete(recording), () => {});
  }

  /** Records what is queued and resolves once every batch was recorded (or failed). */
  async settled(): Promise<void> {
    this.flush();
    await Promise.all(this.#batches);
  }
}
