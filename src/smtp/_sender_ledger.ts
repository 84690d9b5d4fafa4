/**
 * Per-message bookkeeping of the sender: each recipient is settled exactly once, by the first
 * reply that decides it; whatever is left when the transaction ends is settled in bulk.
 */
import type { Reply } from "../wire/reply.ts";
import type { SettleOutcome } from "../queue/types.ts";

/** One settled recipient. */
export interface LedgerEntry {
  readonly id: number;
  readonly outcome: SettleOutcome;
  readonly reply: Reply;
}

/** Outcomes of one message's recipients, by position. */
export class RecipientLedger {
  readonly #ids: readonly number[];
  readonly #entries: (LedgerEntry | undefined)[];
  #isEndSent = false;

  constructor(recipients: readonly { readonly id: number }[]) {
    this.#ids = recipients.map((r) => r.id);
    this.#entries = recipients.map(() => undefined);
  }

  /** Settles recipient `index` unless it already is. */
  settle(index: number, outcome: SettleOutcome, reply: Reply): void {
    const id = this.#ids[index];
    if (id === undefined || this.#entries[index] !== undefined) return;
    this.#entries[index] = { id, outcome, reply };
  }

  /** The end of data is about to be written (MessageResult.isEndSent). */
  markEndSent(): void {
    this.#isEndSent = true;
  }

  get isEndSent(): boolean {
    return this.#isEndSent;
  }

  /** Settles every recipient not settled yet. */
  settleRest(outcome: SettleOutcome, reply: Reply): void {
    for (let i = 0; i < this.#ids.length; i++) this.settle(i, outcome, reply);
  }

  /** All entries in recipient order; throws if one was never settled (a sender bug). */
  results(): LedgerEntry[] {
    return this.#entries.map((e, i) => {
      if (e === undefined) throw new Error(`recipient #${i} left unsettled`);
      return e;
    });
  }

  counts(): Record<SettleOutcome, number> {
    const c = { delivered: 0, deferred: 0, failed: 0 };
    for (const e of this.#entries) if (e !== undefined) c[e.outcome]++;
    return c;
  }
}
