import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { ClaimResult, Lease } from "../../src/queue/types.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { delivered, queueMessage } from "../_helpers/queue_fixtures.ts";
import { collectBytes } from "../_helpers/bytes.ts";

/** The body `queueMessage` writes by default, and its length. */
const FIXTURE_BODY = "Subject: t\r\n\r\nbody\r\n";
const FIXTURE_BODY_BYTES = new TextEncoder().encode(FIXTURE_BODY).length;

const T0 = 1_700_000_000_000;

interface Clock {
  ms: number;
}

async function withClockStore(
  fn: (store: SqliteQueueStore, clock: Clock, dataDir: string) => Promise<void> | void,
  opts: { chunkBytes?: number } = {},
): Promise<void> {
  await withTempDataDir(async (dataDir) => {
    const clock: Clock = { ms: T0 };
    const store = new SqliteQueueStore(openDatabase(dataDir), {
      now: () => clock.ms,
      bodyFiles: false,
      ...opts,
    });
    try {
      await fn(store, clock, dataDir);
    } finally {
      await store.close();
    }
  });
}

function put(store: SqliteQueueStore, clock: Clock, addresses: readonly string[]): Promise<string> {
  clock.ms += 1000; // distinct received_at: "oldest first" is observable
  return queueMessage(store, { to: addresses });
}

function leaseOf(result: ClaimResult): Lease {
  assert.equal(result.kind, "claimed");
  if (result.kind !== "claimed") throw new Error("unreachable");
  return result.lease;
}

const A = { owner: "session-a", leaseSeconds: 60 };
const B = { owner: "session-b", leaseSeconds: 60 };

Deno.test("claim() on domains with nothing queued is empty and leaves no lease", async () => {
  await withClockStore(async (store, clock) => {
    await put(store, clock, ["x@other.test"]);
    assert.deepEqual(await store.claim(["example.org"], A), { kind: "empty" });
    // No lease was left behind: another owner can claim the other domain at once.
    leaseOf(await store.claim(["other.test"], B)).release();
    assert.deepEqual((await store.claim(["example.org", "other.test"], B)).kind, "claimed");
  });
});

Deno.test("claim() is all-or-nothing: one busy domain refuses the whole set", async () => {
  await withClockStore(async (store, clock) => {
    await put(store, clock, ["a@one.test"]);
    await put(store, clock, ["b@two.test"]);
    const a = leaseOf(await store.claim(["two.test"], A));
    assert.deepEqual(await store.claim(["one.test", "two.test"], B), {
      kind: "busy",
      domain: "two.test",
    });
    // one.test must not have been leased to B by the refused claim.
    const again = leaseOf(await store.claim(["one.test"], A));
    await again.release();
    await a.release();
    leaseOf(await store.claim(["one.test", "two.test"], B)).release();
  });
});

Deno.test("claim() takes over a lease once it has expired (N ms vs N+1 ms)", async () => {
  await withClockStore(async (store, clock) => {
    await put(store, clock, ["a@one.test"]);
    const a = leaseOf(await store.claim(["one.test"], A));
    clock.ms += 59_999; // one ms before lease_until: still live
    assert.deepEqual(await store.claim(["one.test"], B), { kind: "busy", domain: "one.test" });
    clock.ms += 1;
    const b = leaseOf(await store.claim(["one.test"], B));
    assert.equal(await a.renew(), false, "A lost its lease to B");
    assert.equal(await b.renew(), true);
    await b.release();
  });
});

Deno.test("Lease.messages() yields oldest first with only queued recipients in its domains", async () => {
  await withClockStore(async (store, clock) => {
    const m1 = await put(store, clock, ["a@one.test", "b@two.test", "c@one.test"]);
    const m2 = await put(store, clock, ["d@two.test"]);
    const m3 = await put(store, clock, ["e@one.test"]);
    const lease = leaseOf(await store.claim(["one.test"], A));
    const got = (await Array.fromAsync(lease.messages())).map((m) => ({
      id: m.id,
      to: m.recipients.map((r) => `${r.address}:${r.status}`),
    }));
    assert.deepEqual(got, [
      { id: m1, to: ["a@one.test:delivering", "c@one.test:delivering"] },
      { id: m3, to: ["e@one.test:delivering"] },
    ]);
    assert.notEqual(m2, m1);
    await lease.release();
  });
});

Deno.test("Lease.messages() pages through more messages than one page holds", async () => {
  await withClockStore(async (store, clock) => {
    const ids: string[] = [];
    for (let i = 0; i < 230; i++) ids.push(await put(store, clock, [`u${i}@one.test`]));
    const lease = leaseOf(await store.claim(["one.test"], A));
    assert.deepEqual((await Array.fromAsync(lease.messages())).map((m) => m.id), ids);
    await lease.release();
  });
});

Deno.test("Lease.settle() deletes delivered recipients, then the message and its body", async () => {
  await withClockStore(async (store, clock, dataDir) => {
    const id = await put(store, clock, ["a@one.test", "b@one.test"]);
    const lease = leaseOf(await store.claim(["one.test"], A));
    const [message] = await Array.fromAsync(lease.messages());
    assert.ok(message);
    const [ra, rb] = message.recipients;
    assert.ok(ra && rb);
    await lease.settle([delivered(id, ra.id)]);
    assert.deepEqual((await store.get(id))?.recipients.map((r) => r.address), ["b@one.test"]);
    await lease.settle([delivered(id, rb.id)]);
    assert.equal(await store.get(id), undefined);
    // The body goes with the lease's release (or every 256 messages), not in each settle (#13).
    await lease.release();
    assert.equal(chunkRows(dataDir), 0);
  });
});

function chunkRows(dataDir: string): number {
  const raw = new DatabaseSync(`${dataDir}/odmr.db`);
  try {
    const row: unknown = raw.prepare("SELECT count(*) AS n FROM message_chunks").get();
    return Number((row as { n: number }).n);
  } finally {
    raw.close();
  }
}

Deno.test("Lease.settle() deletes bodies in batches of 256 messages and at release, never a queued one (#13)", async () => {
  await withClockStore(async (store, clock, dataDir) => {
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push(await put(store, clock, [`u${i}@one.test`]));
    const kept = await put(store, clock, ["k@two.test"]);
    const lease = leaseOf(await store.claim(["one.test"], A));
    const messages = await Array.fromAsync(lease.messages());
    const settleNth = (i: number) => {
      const m = messages[i];
      const r = m?.recipients[0];
      assert.ok(m && r);
      return lease.settle([delivered(m.id, r.id)]);
    };
    for (let i = 0; i < 255; i++) await settleNth(i);
    assert.equal(chunkRows(dataDir), 301, "255 settled: no body deleted yet");
    await settleNth(255);
    assert.equal(chunkRows(dataDir), 45, "the 256th settle deletes 256 bodies at once");
    for (let i = 256; i < 300; i++) await settleNth(i);
    assert.equal(chunkRows(dataDir), 45);
    await lease.release();
    assert.equal(chunkRows(dataDir), 1, "release deletes the rest; the other domain's body stays");
    assert.ok(await store.get(kept));
    // Each body exactly one chunk row: a body shorter than a chunk is kept in its message's row.
  }, { chunkBytes: FIXTURE_BODY_BYTES });
});

Deno.test("Lease.settle() removes a body kept in its message's row with the message (#13)", async () => {
  await withClockStore(async (store, clock, dataDir) => {
    const id = await put(store, clock, ["a@one.test"]);
    const other = await put(store, clock, ["b@two.test"]);
    assert.equal(chunkRows(dataDir), 0, "a short body is in the message's row");
    const lease = leaseOf(await store.claim(["one.test"], A));
    const [message] = await Array.fromAsync(lease.messages());
    assert.equal(new TextDecoder().decode(await collectBytes(store.readBody(id))), FIXTURE_BODY);
    const r = message?.recipients[0];
    assert.ok(r);
    await lease.settle([delivered(id, r.id)]);
    assert.equal(await store.get(id), undefined);
    await assert.rejects(collectBytes(store.readBody(id)), /no such message/, "gone with its row");
    await lease.release();
    assert.equal(
      new TextDecoder().decode(await collectBytes(store.readBody(other))),
      FIXTURE_BODY,
      "the other domain's body stays",
    );
  });
});

Deno.test("Lease.settle() keeps deferred recipients queued and marks failed ones", async () => {
  await withClockStore(async (store, clock) => {
    const id = await put(store, clock, ["a@one.test", "b@one.test"]);
    const lease = leaseOf(await store.claim(["one.test"], A));
    const [ra, rb] = (await Array.fromAsync(lease.messages()))[0]?.recipients ?? [];
    assert.ok(ra && rb);
    await Promise.all([
      lease.settle([{
        recipientId: ra.id,
        messageId: id,
        outcome: "deferred",
        reply: "451 4.3.0 later",
      }]),
      lease.settle([{
        recipientId: rb.id,
        messageId: id,
        outcome: "failed",
        reply: "550 5.1.1 no such user",
      }]),
    ]);
    assert.equal((await store.get(id))?.recipients[0]?.status, "delivering", "domain still leased");
    await lease.release();
    assert.deepEqual(
      (await store.get(id))?.recipients.map((r) => ({
        address: r.address,
        status: r.status,
        attempts: r.attempts,
        lastReply: r.lastReply,
      })),
      [
        { address: "a@one.test", status: "queued", attempts: 1, lastReply: "451 4.3.0 later" },
        {
          address: "b@one.test",
          status: "failed",
          attempts: 1,
          lastReply: "550 5.1.1 no such user",
        },
      ],
    );
    // The failed recipient is not offered again; the deferred one is.
    const next = leaseOf(await store.claim(["one.test"], B));
    assert.deepEqual(
      (await Array.fromAsync(next.messages()))[0]?.recipients.map((r) => r.address),
      ["a@one.test"],
    );
    await next.release();
  });
});

Deno.test("claim() is empty when only failed recipients remain", async () => {
  await withClockStore(async (store, clock) => {
    const id = await put(store, clock, ["a@one.test"]);
    const lease = leaseOf(await store.claim(["one.test"], A));
    const r = (await Array.fromAsync(lease.messages()))[0]?.recipients[0];
    assert.ok(r);
    await lease.settle([{ recipientId: r.id, messageId: id, outcome: "failed", reply: "550 no" }]);
    await lease.release();
    assert.deepEqual(await store.claim(["one.test"], A), { kind: "empty" });
  });
});

Deno.test("list() shows statuses and --domain shows only that domain's recipients", async () => {
  await withClockStore(async (store, clock) => {
    const m1 = await put(store, clock, ["a@one.test", "b@two.test"]);
    await put(store, clock, ["c@two.test"]);
    const lease = leaseOf(await store.claim(["two.test"], A));
    const view = await store.list({ domain: "one.test" });
    assert.deepEqual(view.map((m) => [m.id, m.recipients.map((r) => r.address)]), [
      [m1, ["a@one.test"]],
    ]);
    assert.deepEqual(
      (await store.list()).flatMap((m) => m.recipients.map((r) => `${r.address}:${r.status}`)),
      ["a@one.test:queued", "b@two.test:delivering", "c@two.test:delivering"],
    );
    await lease.release();
  });
});

Deno.test("deleteDomain() removes that domain's recipients and messages left empty", async () => {
  await withClockStore(async (store, clock) => {
    const m1 = await put(store, clock, ["a@one.test", "b@two.test"]);
    const m2 = await put(store, clock, ["c@two.test"]);
    assert.equal(await store.deleteDomain("two.test"), 2);
    assert.equal(await store.get(m2), undefined);
    assert.deepEqual((await store.get(m1))?.recipients.map((r) => r.address), ["a@one.test"]);
    assert.equal(await store.delete([m1, m2, "NOSUCHMESSAGE0"]), 1);
    assert.deepEqual(await store.list(), []);
  });
});

Deno.test("domainStats() counts each message once per domain with its size and age", async () => {
  await withClockStore(async (store, clock) => {
    await put(store, clock, ["a@one.test", "b@one.test", "c@two.test"]);
    await put(store, clock, ["d@two.test"]);
    const size = new TextEncoder().encode("Subject: t\r\n\r\nbody\r\n").length;
    assert.deepEqual(await store.domainStats(), [
      { domain: "one.test", route: "atrn", messages: 1, bytes: size, oldestReceivedAt: T0 + 1000 },
      {
        domain: "two.test",
        route: "atrn",
        messages: 2,
        bytes: 2 * size,
        oldestReceivedAt: T0 + 1000,
      },
    ]);
  });
});

Deno.test("domainStats() leaves out recipients that failed: they no longer wait for delivery", async () => {
  await withClockStore(async (store, clock) => {
    await put(store, clock, ["a@one.test"]);
    await put(store, clock, ["b@one.test"]);
    const lease = leaseOf(await store.claim(["one.test"], A));
    const [first] = await Array.fromAsync(lease.messages());
    const rcpt = first?.recipients[0];
    assert.ok(rcpt, "the oldest message has its recipient");
    await lease.settle([
      { recipientId: rcpt.id, messageId: first.id, outcome: "failed", reply: "550 5.1.1 no" },
    ]);
    await lease.release();
    const size = new TextEncoder().encode("Subject: t\r\n\r\nbody\r\n").length;
    assert.deepEqual(await store.domainStats(), [
      { domain: "one.test", route: "atrn", messages: 1, bytes: size, oldestReceivedAt: T0 + 2000 },
    ]);
  });
});
