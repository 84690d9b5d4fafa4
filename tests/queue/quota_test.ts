import assert from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { exceededQuota, type QuotaLimits } from "../../src/queue/quota.ts";
import { QueueSink, QUOTA_REPLY } from "../../src/smtp/sinks/queue_sink.ts";
import type { SinkTransaction } from "../../src/smtp/sink.ts";
import type { Reply } from "../../src/wire/reply.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { sessionInfo } from "../_helpers/session_info.ts";

const SESSION = sessionInfo({ sessionId: "s1", remoteAddress: "192.0.2.1", heloName: "c.test" });

async function withSink(
  quotas: Record<string, QuotaLimits>,
  fn: (sink: QueueSink, store: SqliteQueueStore) => Promise<void>,
): Promise<void> {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir));
    try {
      const sink = new QueueSink({
        store,
        isLocalDomain: (d) => d.endsWith(".test"),
        log: NULL_LOGGER,
        maxRecipients: 10,
        quotaOf: (d) => quotas[d],
      });
      await fn(sink, store);
    } finally {
      await store.close();
    }
  });
}

async function begin(sink: QueueSink, declaredSize?: number): Promise<SinkTransaction> {
  const tx = await sink.begin({
    address: "s@far.example",
    params: {},
    ...(declaredSize !== undefined ? { declaredSize } : {}),
  }, SESSION);
  assert.ok("addRecipient" in tx);
  return tx;
}

function rcpt(address: string) {
  return { address, domain: address.slice(address.indexOf("@") + 1) };
}

/** One whole transaction; the RCPT reply, then (if accepted) the end-of-data reply. */
async function send(sink: QueueSink, to: string, bodyBytes: number): Promise<Reply[]> {
  const tx = await begin(sink);
  const rcptReply = await tx.addRecipient(rcpt(to));
  if (rcptReply.code !== 250) {
    await tx.abort();
    return [rcptReply];
  }
  await tx.write(new Uint8Array(bodyBytes).fill(0x61));
  return [rcptReply, await tx.finish()];
}

function codes(replies: Reply[]): string {
  return replies.map((r) => `${r.code} ${r.enhanced ?? ""}`.trim()).join(" / ");
}

Deno.test("exceededQuota() allows exactly N messages and N bytes, refuses N+1", () => {
  const limits = { messages: 2, bytes: 100 };
  assert.equal(exceededQuota({ messages: 1, bytes: 0 }, limits, 1), undefined);
  assert.equal(exceededQuota({ messages: 2, bytes: 0 }, limits, 1), "messages");
  assert.equal(exceededQuota({ messages: 0, bytes: 60 }, limits, 40), undefined);
  assert.equal(exceededQuota({ messages: 0, bytes: 60 }, limits, 41), "bytes");
  assert.equal(
    exceededQuota({ messages: 9, bytes: 9 }, { messages: undefined, bytes: undefined }, 9),
    undefined,
  );
});

Deno.test("QueueSink takes N messages for a domain at its quota and answers 452 4.2.2 to the N+1th RCPT", async () => {
  await withSink({ "full.test": { messages: 2, bytes: undefined } }, async (sink, store) => {
    assert.equal(codes(await send(sink, "a@full.test", 10)), "250 2.1.5 / 250 2.6.0");
    assert.equal(codes(await send(sink, "b@full.test", 10)), "250 2.1.5 / 250 2.6.0");
    const refused = await send(sink, "c@full.test", 10);
    assert.equal(codes(refused), "452 4.2.2");
    assert.deepEqual(refused[0], QUOTA_REPLY);
    // Another domain is not affected, and nothing was stored for the refused one.
    assert.equal(codes(await send(sink, "d@free.test", 10)), "250 2.1.5 / 250 2.6.0");
    assert.deepEqual(await store.usage("full.test"), { messages: 2, bytes: 20 });
    // Space freed (delivery, delete) is usable at once.
    await store.delete([(await store.list({ domain: "full.test" }))[0]?.id ?? ""]);
    assert.equal(codes(await send(sink, "c@full.test", 10)), "250 2.1.5 / 250 2.6.0");
  });
});

Deno.test("QueueSink refuses at the end of DATA a message that would pass the byte quota (N vs N+1)", async () => {
  await withSink({ "full.test": { messages: undefined, bytes: 1000 } }, async (sink, store) => {
    assert.equal(codes(await send(sink, "a@full.test", 600)), "250 2.1.5 / 250 2.6.0");
    assert.equal(codes(await send(sink, "b@full.test", 401)), "250 2.1.5 / 452 4.2.2");
    assert.deepEqual(await store.usage("full.test"), { messages: 1, bytes: 600 }, "nothing kept");
    assert.equal((await store.list()).length, 1);
    assert.equal(codes(await send(sink, "b@full.test", 400)), "250 2.1.5 / 250 2.6.0");
    // Exactly at the byte quota: the next RCPT is refused before any data.
    assert.equal(codes(await send(sink, "c@full.test", 1)), "452 4.2.2");
  });
});

Deno.test("QueueSink refuses at RCPT when SIZE= already says the message will not fit", async () => {
  await withSink({ "full.test": { messages: undefined, bytes: 1000 } }, async (sink) => {
    const fits = await begin(sink, 1000);
    assert.equal((await fits.addRecipient(rcpt("a@full.test"))).code, 250);
    await fits.abort();
    const tooBig = await begin(sink, 1001);
    assert.deepEqual(await tooBig.addRecipient(rcpt("a@full.test")), QUOTA_REPLY);
    await tooBig.abort();
  });
});

Deno.test("QueueSink: a message to several domains counts once against each domain's quota, none for a domain without one (#13)", async () => {
  await withSink({ "one.test": { messages: 1, bytes: 1000 } }, async (sink, store) => {
    // Two recipients at one.test are one message there (N = 1); free.test has no quota.
    const tx = await begin(sink);
    for (const to of ["a@one.test", "b@one.test", "c@free.test"]) {
      assert.equal((await tx.addRecipient(rcpt(to))).code, 250, to);
    }
    await tx.write(new Uint8Array(300).fill(0x61));
    assert.equal((await tx.finish()).code, 250);
    assert.deepEqual(await store.usage("one.test"), { messages: 1, bytes: 300 });
    // N + 1 at one.test is refused at RCPT; free.test still takes mail in the same message.
    const next = await begin(sink);
    assert.equal((await next.addRecipient(rcpt("d@free.test"))).code, 250);
    assert.deepEqual(await next.addRecipient(rcpt("e@one.test")), QUOTA_REPLY);
    await next.write(new Uint8Array(2000).fill(0x62));
    assert.equal((await next.finish()).code, 250, "no quota at free.test, whatever the size");
  });
});
