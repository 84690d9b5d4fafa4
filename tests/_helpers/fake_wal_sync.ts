/**
 * A `WalSync` whose syncs stay pending until the test finishes them (with success or an error),
 * and what such tests need to let the event loop move on without timers.
 */
import { setImmediate } from "node:timers";
import type { WalSync } from "../../src/queue/_wal_sync.ts";

/** A WalSync whose syncs the test finishes; `syncNow` counts calls and can be made to throw. */
export class FakeSync implements WalSync {
  readonly pending: { resolve(): void; reject(err: Error): void }[] = [];
  syncNowCalls = 0;
  /** Thrown by the next `syncNow` calls while set. */
  syncNowError: Error | undefined;

  sync(): Promise<void> {
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }
  syncNow(): void {
    this.syncNowCalls++;
    if (this.syncNowError !== undefined) throw this.syncNowError;
  }
  close(): void {}

  /** Finishes the `i`-th sync started so far. */
  finish(i: number, err?: Error): void {
    const p = this.pending[i];
    if (p === undefined) throw new Error(`no sync #${i}`);
    if (err === undefined) p.resolve();
    else p.reject(err);
  }
}

/** Lets every immediate, microtask and settled promise of this turn run. */
export async function turns(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** Tracks whether a promise has settled, and how. */
export function track(p: Promise<unknown>): { state: "pending" | "resolved" | "rejected" } {
  const t: { state: "pending" | "resolved" | "rejected" } = { state: "pending" };
  p.then(() => t.state = "resolved", () => t.state = "rejected");
  return t;
}
