import assert from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { EXPIRED_GRACE_MS } from "../../src/queue/_maintenance.ts";
import type {
  MaintenanceOptions,
  MessageParams,
  NewRecipient,
  QueuedMessage,
} from "../../src/queue/types.ts";
import type { LogFields } from "../../src/observe/log.ts";
import { recordingLogger } from "../_helpers/recording_logger.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { maintenanceOptions, queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";

const T0 = 1_700_000_000_000;
const DAY = 86_400_000;
const LOCAL = new Set(["local.test", "other-local.test"]);
const HEADERS = "From: a@x\r\nSubject: old mail\r\nMessage-ID: <m1@x>\r\n\r\n";

interface Clock {
  ms: number;
}

async function withClockStore(
  fn: (
    store: SqliteQueueStore,
    clock: Clock,
    events: { event: string; fields: LogFields }[],
  ) => Promise<void> | void,
): Promise<void> {
  await withTempDataDir(async (dataDir) => {
    const clock: Clock = { ms: T0 };
    const events: { event: string; fields: LogFields }[] = [];
    const store = new SqliteQueueStore(openDatabase(dataDir), {
      now: () => clock.ms,
      logger: recordingLogger(events),
    });
    try {
      await fn(store, clock, events);
    } finally {
      await store.close();
    }
  });
}

function put(
  store: SqliteQueueStore,
  from: string,
  recipients: readonly NewRecipient[],
  opts: { params?: MessageParams; body?: string } = {},
): Promise<string> {
  return queueMessage(store, {
    ...opts,
    from,
    to: recipients,
    body: opts.body ?? `${HEADERS}body line\r\n`,
  });
}

function options(maxAge: Record<string, number> = {}): MaintenanceOptions {
  return maintenanceOptions({
    maxAgeMs: (domain) => maxAge[domain] ?? 7 * DAY,
    isLocalDomain: (domain) => LOCAL.has(domain),
  });
}

function statuses(m: QueuedMessage | undefined): string[] {
  return (m?.recipients ?? []).map((r) => `${r.address}:${r.status}`);
}

async function reports(store: SqliteQueueStore): Promise<QueuedMessage[]> {
  return (await store.list()).filter((m) => m.mailFrom === "");
}

async function text(parts: AsyncIterable<Uint8Array>): Promise<string> {
  let out = "";
  const decoder = new TextDecoder();
  for await (const p of parts) out += decoder.decode(p, { stream: true });
  return out;
}

Deno.test("maintain() expires recipients once older than max_age (N ms vs N+1 ms)", async () => {
  await withClockStore(async (store, clock, events) => {
    const id = await put(store, "alice@far.test", [rcpt("u@local.test")]);
    clock.ms = T0 + 7 * DAY;
    assert.equal(
      (await store.maintain(options())).expiredRecipients,
      0,
      "exactly max_age: not yet",
    );
    assert.deepEqual(statuses(await store.get(id)), ["u@local.test:queued"]);
    clock.ms = T0 + 7 * DAY + 1;
    // Older than max_age, not as old: one millisecond past it is the first expired instant.
    const report = await store.maintain(options());
    assert.equal(report.expiredRecipients, 1);
    assert.deepEqual(statuses(await store.get(id)), ["u@local.test:expired"]);
    const logged = events.find((e) => e.event === "recipient_expired");
    assert.equal(logged?.fields.recipient, "u@local.test");
    assert.equal(logged?.fields.id, id);
    // An expired recipient is never handed out again.
    assert.deepEqual(await store.claim(["local.test"], { owner: "s", leaseSeconds: 60 }), {
      kind: "empty",
    });
    assert.equal((await store.maintain(options())).expiredRecipients, 0, "expired only once");
  });
});

Deno.test("maintain() queues one DSN per message for a local sender domain", async () => {
  await withClockStore(async (store, clock, events) => {
    const id = await put(store, "Bob@Other-Local.TEST", [
      rcpt("a@local.test"),
      rcpt("b@local.test", { orcpt: "rfc822;b@local.test" }),
    ], { params: { envid: "ENV42" } });
    clock.ms = T0 + 8 * DAY;
    const report = await store.maintain(options());
    assert.equal(report.expiredRecipients, 2);
    assert.equal(report.dsnQueued, 1);
    const [dsn, ...more] = await reports(store);
    assert.equal(more.length, 0, "all expired recipients of a message share one report");
    assert.ok(dsn);
    assert.deepEqual(dsn.recipients.map((r) => [r.address, r.domain, r.status]), [
      ["Bob@Other-Local.TEST", "other-local.test", "queued"],
    ]);
    const body = await text(store.readBody(dsn.id));
    assert.match(body, /^Content-Type: multipart\/report; report-type=delivery-status;/m);
    assert.match(body, /^Auto-Submitted: auto-replied\r$/m);
    assert.match(body, /^Reporting-MTA: dns; mx\.test\r$/m);
    assert.match(body, /^Original-Envelope-Id: ENV42\r$/m);
    assert.match(body, /^Final-Recipient: rfc822; a@local\.test\r$/m);
    assert.match(body, /^Original-Recipient: rfc822;b@local\.test\r$/m);
    assert.equal(body.match(/^Status: 5\.4\.7\r$/mg)?.length, 2);
    assert.match(body, /^Content-Type: text\/rfc822-headers\r$/m);
    assert.match(body, /^Subject: old mail\r$/m);
    assert.doesNotMatch(body, /body line/, "RET=HDRS (the default) returns no body");
    assert.ok(events.some((e) => e.event === "dsn_queued" && e.fields.id === id));
    // The DSN is mail for the sender's domain, fetched with ATRN like any other.
    const claim = await store.claim(["other-local.test"], { owner: "s", leaseSeconds: 60 });
    assert.equal(claim.kind, "claimed");
    if (claim.kind === "claimed") await claim.lease.release();
  });
});

Deno.test("maintain() returns the whole message only for RET=FULL and a small message", async () => {
  await withClockStore(async (store, clock) => {
    await put(store, "s@local.test", [rcpt("x@other-local.test")], { params: { ret: "FULL" } });
    const big = `${HEADERS}${"y".repeat(100)}\r\n`.repeat(1000);
    await put(store, "t@local.test", [rcpt("x@other-local.test")], {
      params: { ret: "FULL" },
      body: big,
    });
    clock.ms = T0 + 8 * DAY;
    assert.equal((await store.maintain(options())).dsnQueued, 2);
    const bodies = await Promise.all(
      (await reports(store)).map((m) => text(store.readBody(m.id))),
    );
    const small = bodies.find((b) => !b.includes("y".repeat(100)) && /To: <s@/.test(b));
    const large = bodies.find((b) => /To: <t@/.test(b));
    assert.match(small ?? "", /^Content-Type: message\/rfc822\r$/m);
    assert.match(small ?? "", /^body line\r$/m);
    assert.match(large ?? "", /^Content-Type: text\/rfc822-headers\r$/m);
    assert.doesNotMatch(large ?? "", /yyyy/);
  });
});

Deno.test("maintain() drops the DSN of a foreign sender and never bounces <>", async () => {
  await withClockStore(async (store, clock, events) => {
    const foreign = await put(store, "someone@far.test", [rcpt("a@local.test")]);
    const nullSender = await put(store, "", [rcpt("b@local.test")]);
    const never = await put(store, "c@other-local.test", [
      rcpt("c@local.test", { notify: "NEVER" }),
    ]);
    clock.ms = T0 + 8 * DAY;
    const report = await store.maintain(options());
    assert.equal(report.expiredRecipients, 3);
    assert.equal(report.dsnQueued, 0);
    assert.equal(report.dsnDropped, 1);
    assert.deepEqual(
      (await reports(store)).map((m) => m.id),
      [nullSender],
      "only the original <> mail",
    );
    assert.ok(events.some((e) => e.event === "dsn_dropped" && e.fields.id === foreign));
    assert.deepEqual(statuses(await store.get(never)), ["c@local.test:expired"]);
  });
});

Deno.test("maintain() removes expired recipients after the grace period (N vs N+1 ms)", async () => {
  await withClockStore(async (store, clock) => {
    const id = await put(store, "", [rcpt("a@local.test"), rcpt("b@other-local.test")]);
    clock.ms = T0 + 2 * DAY;
    await store.maintain(options({ "local.test": 1 * DAY }));
    const expiredAt = clock.ms;
    assert.deepEqual(statuses(await store.get(id)), [
      "a@local.test:expired",
      "b@other-local.test:queued",
    ]);
    clock.ms = expiredAt + EXPIRED_GRACE_MS - 1;
    assert.equal((await store.maintain(options({ "local.test": 1 * DAY }))).removedRecipients, 0);
    clock.ms = expiredAt + EXPIRED_GRACE_MS;
    assert.equal((await store.maintain(options({ "local.test": 1 * DAY }))).removedRecipients, 1);
    assert.deepEqual(statuses(await store.get(id)), ["b@other-local.test:queued"]);
    assert.deepEqual(await store.usage("local.test"), { messages: 0, bytes: 0 });
    // The other recipient goes the same way; then the message and its body are gone.
    clock.ms += 7 * DAY;
    await store.maintain(options({ "local.test": 1 * DAY }));
    clock.ms += EXPIRED_GRACE_MS;
    await store.maintain(options({ "local.test": 1 * DAY }));
    assert.equal(await store.get(id), undefined);
    await assert.rejects(Array.fromAsync(store.readBody(id)), /no such message/);
  });
});

Deno.test("maintain() uses a domain's own max_age over the global one", async () => {
  await withClockStore(async (store, clock) => {
    const id = await put(store, "", [rcpt("a@local.test"), rcpt("b@other-local.test")]);
    clock.ms = T0 + 2 * DAY;
    // local.test keeps mail 1 day, everything else the global 7 days.
    await store.maintain(options({ "local.test": DAY }));
    assert.deepEqual(statuses(await store.get(id)), [
      "a@local.test:expired",
      "b@other-local.test:queued",
    ]);
    // A longer per-domain max_age keeps mail past the global one.
    const kept = await put(store, "", [rcpt("c@other-local.test")]);
    clock.ms += 8 * DAY;
    await store.maintain(options({ "local.test": DAY, "other-local.test": 30 * DAY }));
    assert.deepEqual(statuses(await store.get(kept)), ["c@other-local.test:queued"]);
  });
});

Deno.test("maintain() leaves a domain alone while a session holds its lease", async () => {
  await withClockStore(async (store, clock) => {
    const id = await put(store, "", [rcpt("a@local.test")]);
    const claim = await store.claim(["local.test"], { owner: "s", leaseSeconds: 30 * 86_400 });
    assert.equal(claim.kind, "claimed");
    clock.ms = T0 + 8 * DAY;
    assert.equal((await store.maintain(options())).expiredRecipients, 0);
    if (claim.kind === "claimed") await claim.lease.release();
    assert.equal((await store.maintain(options())).expiredRecipients, 1);
    assert.deepEqual(statuses(await store.get(id)), ["a@local.test:expired"]);
  });
});

Deno.test("usage() counts a message once per domain and follows deliveries and deletes", async () => {
  await withClockStore(async (store) => {
    assert.deepEqual(await store.usage("local.test"), { messages: 0, bytes: 0 });
    const body = `${HEADERS}body line\r\n`;
    const size = new TextEncoder().encode(body).length;
    const one = await put(store, "", [rcpt("a@local.test"), rcpt("b@local.test")]);
    await put(store, "", [rcpt("c@local.test"), rcpt("d@other-local.test")]);
    assert.deepEqual(await store.usage("local.test"), { messages: 2, bytes: 2 * size });
    assert.deepEqual(await store.usage("other-local.test"), { messages: 1, bytes: size });
    const claim = await store.claim(["local.test"], { owner: "s", leaseSeconds: 60 });
    assert.equal(claim.kind, "claimed");
    if (claim.kind !== "claimed") return;
    const first = (await Array.fromAsync(claim.lease.messages())).find((m) => m.id === one); // same received_at: find by id
    const [ra, rb] = first?.recipients ?? [];
    assert.ok(ra && rb);
    await claim.lease.settle([{
      recipientId: ra.id,
      messageId: one,
      outcome: "delivered",
      reply: "250",
    }]);
    assert.deepEqual(await store.usage("local.test"), { messages: 2, bytes: 2 * size }, "b waits");
    await claim.lease.settle([{
      recipientId: rb.id,
      messageId: one,
      outcome: "delivered",
      reply: "250",
    }]);
    assert.deepEqual(await store.usage("local.test"), { messages: 1, bytes: size });
    await claim.lease.release();
    assert.equal(await store.get(one), undefined);
    assert.equal(await store.deleteDomain("other-local.test"), 1);
    assert.deepEqual(await store.usage("other-local.test"), { messages: 0, bytes: 0 });
    await store.delete((await store.list()).map((m) => m.id));
    assert.deepEqual(await store.usage("local.test"), { messages: 0, bytes: 0 });
  });
});
