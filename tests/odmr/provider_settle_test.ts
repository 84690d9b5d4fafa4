// The drain's settlements go to the queue one batch per turn of the event loop (#13): one
// Lease.settle call for the results that came together, each message's follow-up only once
// its batch is recorded, and a failed batch reported per message.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import assert from "node:assert/strict";
import { SettleBatcher } from "../../src/odmr/_provider_settle.ts";
import type { Settlement } from "../../src/queue/types.ts";

const delivered = (recipientId: number): Settlement => ({
  recipientId,
  messageId: `m${recipientId}`,
  outcome: "delivered",
  reply: "250 2.0.0 OK",
});

/**
 * A lease whose settle calls are recorded and resolved (or rejected) by the test;
 * `called(n)` resolves once the n-th call has come (the test waits for the batcher's own
 * event, not for a timer that a loaded machine may run before or after it).
 */
function fakeLease() {
  const calls: { ids: number[]; resolve: () => void; reject: (e: Error) => void }[] = [];
  const waiting: { n: number; resolve: () => void }[] = [];
  return {
    calls,
    settle(results: readonly Settlement[]): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        calls.push({ ids: results.map((r) => r.recipientId), resolve, reject });
        for (const w of waiting.filter((w) => w.n <= calls.length)) w.resolve();
      });
    },
    called(n: number): Promise<void> {
      if (calls.length >= n) return Promise.resolve();
      return new Promise<void>((resolve) => waiting.push({ n, resolve }));
    },
  };
}

Deno.test("SettleBatcher records the results of one turn in one settle call, in order (#13)", async () => {
  const lease = fakeLease();
  const batcher = new SettleBatcher(lease);
  const recorded: number[] = [];
  for (const id of [1, 2, 3]) {
    batcher.add({
      settlements: [delivered(id), delivered(id * 10)],
      recorded: () => Promise.resolve(void recorded.push(id)),
      failed: () => assert.fail("not failed"),
    });
  }
  // Nothing is recorded during the turn that queued them; the first call holds all three.
  await Promise.resolve();
  assertEquals(lease.calls.length, 0);
  await lease.called(1);
  assertEquals(lease.calls.map((c) => c.ids), [[1, 10, 2, 20, 3, 30]]);
  // Follow-ups (failure DSNs) wait for the batch to be recorded.
  assertEquals(recorded, []);
  batcher.add({ settlements: [delivered(4)], recorded: () => Promise.resolve(), failed: () => {} });
  await lease.called(2);
  assertEquals(lease.calls.map((c) => c.ids), [[1, 10, 2, 20, 3, 30], [4]]);
  for (const c of lease.calls) c.resolve();
  await batcher.settled();
  assertEquals(recorded, [1, 2, 3]);
});

Deno.test("SettleBatcher reports a batch that cannot be recorded once per message, and settled() still ends (#13)", async () => {
  const lease = fakeLease();
  const batcher = new SettleBatcher(lease);
  const failed: number[] = [];
  for (const id of [1, 2]) {
    batcher.add({
      settlements: [delivered(id)],
      recorded: () => Promise.reject(new Error("no follow-up for an unrecorded batch")),
      failed: () => void failed.push(id),
    });
  }
  // settled() records what is queued at once, without waiting for the turn to end.
  const done = batcher.settled();
  assertEquals(lease.calls.length, 1);
  lease.calls[0]?.reject(new Error("disk I/O error"));
  await done;
  assertEquals(failed, [1, 2]);
});
