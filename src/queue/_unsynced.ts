/**
 * Messages whose rows are committed but not yet on disk: their group COMMIT wrote the WAL file
 * (synchronous=NORMAL) and the WAL sync that makes them durable has not ended (_sync_waiters.ts,
 * _wal_sync.ts). Their sender has not heard 250 yet. A lease (an ATRN drain, the outbound worker)
 * reads the same connection and so sees those rows at once; handed out now, a message could be
 * delivered and then its sync fail (the sender hears 4xx and sends it again) or the power go
 * (the rows are gone, the sender sends again): either way it arrives twice. A lease therefore
 * waits for such a message's sync before it hands the message out, and skips it if the sync
 * failed (the writer removes its rows, or hides them: _refused.ts).
 */

/** Ids of committed messages whose sync is still running, each with its outcome. */
export class UnsyncedMessages {
  /** Resolves true once the message is on disk, false if its commit or sync failed. */
  readonly #waits = new Map<string, Promise<boolean>>();

  /** `id`'s rows are in the open or a committed transaction; `durable` settles with its sync. */
  add(id: string, durable: Promise<void>): void {
    const outcome = durable.then(() => true, () => false);
    this.#waits.set(id, outcome);
    void outcome.then(() => {
      if (this.#waits.get(id) === outcome) this.#waits.delete(id);
    });
  }

  /** Undefined when `id` is on disk (or unknown); else whether it gets there. */
  wait(id: string): Promise<boolean> | undefined {
    return this.#waits.size === 0 ? undefined : this.#waits.get(id);
  }
}

/** `found` without messages not yet on disk: each waits for its sync, one that failed is left out. */
export async function* onDisk<T extends { readonly message: { readonly id: string } }>(
  found: Iterable<T>,
  unsynced: UnsyncedMessages | undefined,
): AsyncGenerator<T> {
  for (const item of found) {
    const waiting = unsynced?.wait(item.message.id);
    if (waiting !== undefined && !(await waiting)) continue;
    yield item;
  }
}
