/**
 * The core of the QueueStore contract, run by tests/queue/contract_test.ts against both
 * backends: what the contract's parts share (the opener, a clock, queueing at the next second,
 * two lease owners), and the writes: a body comes back byte-exact, an abort leaves nothing,
 * concurrent commits share group commits.
 */
import assert from "node:assert/strict";
import type { Lease, QueueStore } from "../../src/queue/types.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";
import type { Clock } from "./_outbound_contract.ts";

export const DAY = 86_400_000;
export const A = { owner: "session-a", leaseSeconds: 60 };
export const B = { owner: "session-b", leaseSeconds: 60 };

/**
 * Opens a fresh, empty store of one backend whose clock starts at T0 (_outbound_contract.ts);
 * `commits()` counts its group commits; closes and removes it after `fn`.
 */
export type Opener = (
  fn: (store: QueueStore, clock: Clock, commits: () => number) => Promise<void>,
) => Promise<void>;

/** Queues a message to `addresses`, received one second after the previous one. */
export function put(
  store: QueueStore,
  clock: Clock,
  addresses: readonly string[],
  opts: { from?: string; body?: Uint8Array } = {},
): Promise<string> {
  clock.ms += 1000;
  return queueMessage(store, { ...opts, to: addresses });
}

/** The lease of a claim that must have succeeded. */
export function leaseOf(result: Awaited<ReturnType<QueueStore["claim"]>>): Lease {
  if (result.kind !== "claimed") throw new Error(`claim was ${result.kind}`);
  return result.lease;
}

/** The writes' cases. */
export async function writesContract(t: Deno.TestContext, open: Opener): Promise<void> {
  await t.step("a multi-chunk binary body comes back byte-exact, with its envelope", async () => {
    await open(async (store) => {
      const body = new Uint8Array(150 * 1024 + 3);
      for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 9)) & 0xff;
      const writer = await store.begin({
        mailFrom: "s@example.net",
        params: { body: "8BITMIME" },
        recipients: [rcpt("a@one.test"), rcpt("b@two.test", { notify: "NEVER" })],
      });
      const scratch = new Uint8Array(10_000);
      for (let at = 0; at < body.length; at += 10_000) {
        const piece = body.subarray(at, Math.min(at + 10_000, body.length));
        scratch.set(piece);
        await writer.write(scratch.subarray(0, piece.length));
        scratch.fill(0); // the writer must have copied what it keeps
      }
      await writer.commit();
      assert.deepEqual(await collectBytes(store.readBody(writer.id)), body);
      const got = await store.get(writer.id);
      assert.equal(got?.size, body.length);
      assert.equal(got?.mailFrom, "s@example.net");
      assert.deepEqual(got?.params, { body: "8BITMIME" });
      assert.deepEqual(
        got?.recipients.map((r) => [r.address, r.domain, r.status, r.notify]),
        [["a@one.test", "one.test", "queued", undefined], [
          "b@two.test",
          "two.test",
          "queued",
          "NEVER",
        ]],
      );
    });
  });

  await t.step("a submitted message keeps its submitter; received mail has none", async () => {
    await open(async (store, clock) => {
      const submitted = await store.begin({
        mailFrom: "",
        submitter: "alice",
        params: {},
        recipients: [rcpt("b@two.test", { route: "mx" })],
      });
      await submitted.write(new TextEncoder().encode("x\r\n"));
      await submitted.commit();
      const received = await queueMessage(store, { from: "s@example.net", to: ["a@one.test"] });
      assert.equal((await store.get(submitted.id))?.submitter, "alice");
      assert.equal((await store.get(received))?.submitter, undefined);
      const listed = await store.list();
      assert.deepEqual(
        listed.map((m) => [m.id, m.submitter]).sort(),
        [
          [submitted.id, "alice"],
          [received, undefined],
        ].sort(),
      );
      // What the outbound signer is given.
      const lease = await store.claimOutbound({ owner: "w", leaseSeconds: 60, now: clock.ms });
      assert.ok(lease);
      const leased = await Array.fromAsync(lease.messages());
      assert.deepEqual(leased.map((m) => [m.id, m.submitter]), [[submitted.id, "alice"]]);
      await lease.release();
    });
  });

  await t.step("an aborted message leaves nothing visible", async () => {
    await open(async (store) => {
      const w = await store.begin({ mailFrom: "", params: {}, recipients: [rcpt("a@one.test")] });
      await w.write(new Uint8Array(100_000));
      await w.abort();
      assert.equal(await store.get(w.id), undefined);
      assert.deepEqual(await store.list(), []);
    });
  });

  await t.step("concurrent commits share group commits and each is durable", async () => {
    await open(async (store, _clock, commits) => {
      const writers = await Promise.all(
        Array.from(
          { length: 20 },
          () => store.begin({ mailFrom: "", params: {}, recipients: [rcpt("a@one.test")] }),
        ),
      );
      await Promise.all(writers.map((w) => w.write(new TextEncoder().encode("x\r\n"))));
      await Promise.all(writers.map((w) => w.commit()));
      assert.equal((await store.list()).length, 20);
      assert.ok(commits() < 20, `20 messages took ${commits()} commits`);
    });
  });
}
