/**
 * Fixtures of the outbound batch tests. For runBatch (src/outbound/_batch.ts): a due MX message
 * as a lease lists it, one written to a real store, the signals of a batch nobody stops (the
 * delivery options are _helpers/outbound_world.ts `deliveryOptions`: the batch puts its own log
 * over theirs), and one batch of a store's due destination with the check of a message it
 * deferred. For deliverBatch (src/outbound/deliver.ts): numbered messages, and a run that
 * collects each one's result. And a message failed at once by its batch, with its report.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type BatchCounts, type BatchOptions, runBatch } from "../../src/outbound/_batch.ts";
import { deliverBatch, type DeliveryResult } from "../../src/outbound/deliver.ts";
import { bounceFailed } from "../../src/queue/bounce.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import type { QueuedMessage, QueueStore } from "../../src/queue/types.ts";
import type { OutboundMessage } from "../../src/smtp/sender.ts";
import type { DnsServer } from "../_helpers/dnsmasq.ts";
import { deliveryOptions, outboundMessage } from "../_helpers/outbound_world.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";

/** Message `m<n>` from alice@example.org to `bob<n>@<domain>` by MX, never tried (size 0). */
export function queuedMx(n: number, domain: string): QueuedMessage {
  return {
    id: `m${n}`,
    receivedAt: 0,
    mailFrom: "alice@example.org",
    size: 0,
    params: {},
    recipients: [{
      id: n,
      address: `bob${n}@${domain}`,
      domain,
      status: "queued",
      attempts: 0,
      route: "mx",
    }],
  };
}

/** Queues `body` from `from` to `to` by MX in `store` (committed); returns its id. */
export async function queueMx(
  store: QueueStore,
  to: string,
  mail: { readonly from: string; readonly body: string },
): Promise<string> {
  const writer = await store.begin({
    mailFrom: mail.from,
    params: {},
    recipients: [{ address: to, domain: to.slice(to.indexOf("@") + 1), route: "mx" }],
  });
  await writer.write(new TextEncoder().encode(mail.body));
  await writer.commit();
  return writer.id;
}

/** The signals of a batch that is neither stopped nor cut. */
export function runningSignals(): { readonly stop: AbortSignal; readonly cut: AbortSignal } {
  return { stop: new AbortController().signal, cut: new AbortController().signal };
}

/** The one retry step of `runDueBatch`'s batches. */
export const RETRY_MS = 60_000;

/** What `runDueBatch` did, and when it started. */
export interface DueBatch {
  readonly counts: BatchCounts;
  readonly events: readonly RecordedEvent[];
  readonly startedAt: number;
}

/**
 * Claims the destination due in `store` and runs one batch of it through `dns` (a 60 s lease,
 * one retry step of RETRY_MS; `more` adds options, such as keysForBatch). The batch as a whole
 * must not fail (no `outbound_batch_failed`): what it cannot send, it defers alone.
 */
export async function runDueBatch(
  store: QueueStore,
  dns: DnsServer,
  more: Partial<BatchOptions> = {},
): Promise<DueBatch> {
  const startedAt = Date.now();
  const lease = await store.claimOutbound({ owner: "test", leaseSeconds: 60, now: startedAt });
  assert(lease !== undefined, "a destination is due");
  const events: RecordedEvent[] = [];
  const counts = await runBatch(lease, {
    log: recordingLogger(events),
    delivery: deliveryOptions(dns),
    leaseSeconds: 60,
    retryScheduleMs: [RETRY_MS],
    ...more,
  }, runningSignals());
  assertEquals(
    events.filter((e) => e.event === "outbound_batch_failed").map((e) => e.fields),
    [],
  );
  return { counts, events, startedAt };
}

/** What `failAtOnce` saw: the `failed` event's reply, the statuses, the failure report's text. */
export interface FailedAtOnce {
  readonly reply: string;
  readonly statuses: readonly string[];
  readonly reports: number;
  readonly report: string;
}

/**
 * Queues a message from alice@example.org (ours: her failure report waits for her ATRN) to `to`
 * on a fresh SQLite store, runs one due batch through `dns` with serve's failure reports, and
 * asserts that it failed the recipient without a session or a deferral.
 */
export async function failAtOnce(dns: DnsServer, to: string): Promise<FailedAtOnce> {
  return await withTempDataDir(async (dir) => {
    const store = new SqliteQueueStore(openDatabase(dir));
    try {
      const from = "alice@example.org";
      const id = await queueMx(store, to, {
        from,
        body: `From: ${from}\r\nSubject: hi\r\n\r\nhello\r\n`,
      });
      const { counts, events } = await runDueBatch(store, dns, {
        onFailed: async (message, failed) => {
          await bounceFailed(message, failed, {
            store,
            hostname: "relay.example.net",
            isLocalDomain: (d) => d === "example.org",
            log: NULL_LOGGER,
          });
        },
      });
      assertEquals([counts.failed, counts.deferred, counts.sessions], [1, 0, 0]);
      const reply = String(events.find((e) => e.event === "failed")?.fields.reply);
      const statuses = (await store.get(id))?.recipients.map((r) => r.status) ?? [];
      const reports = (await store.list()).filter((m) => m.id !== id);
      const chunks: Uint8Array[] = [];
      if (reports[0] !== undefined) {
        for await (const c of store.readBody(reports[0].id)) chunks.push(c);
      }
      const report = new TextDecoder().decode(Uint8Array.from(chunks.flatMap((c) => [...c])));
      return { reply, statuses, reports: reports.length, report };
    } finally {
      await store.close();
    }
  });
}

/**
 * Asserts that message `id` (one recipient) was deferred by the batch that started at
 * `startedAt`: still queued, one attempt, its next one a retry step later.
 */
export async function assertDeferredOnce(
  store: QueueStore,
  id: string,
  startedAt: number,
): Promise<void> {
  const left = (await store.get(id))?.recipients[0];
  assertEquals([left?.status, left?.attempts], ["queued", 1]);
  assert(
    (left?.nextAttemptAt ?? 0) >= startedAt + RETRY_MS * 0.9,
    `next attempt ${(left?.nextAttemptAt ?? 0) - startedAt} ms after the batch`,
  );
}

/** An outbound message that knows its number in its batch. */
export interface NumberedMessage extends OutboundMessage {
  readonly n: number;
}

/**
 * `count` messages from a@example.org, message n to `u<n>@<domain>` (recipient id n), with
 * Subject `m<n>` unless `bodyOf` gives the body.
 */
export function numbered(
  domain: string,
  count: number,
  bodyOf?: (n: number) => Uint8Array,
): NumberedMessage[] {
  return Array.from({ length: count }, (_, n): NumberedMessage => {
    const body = bodyOf?.(n) ??
      new TextEncoder().encode(`From: a@example.org\r\nSubject: m${n}\r\n\r\nbody ${n}\r\n`);
    return { n, ...outboundMessage([`u${n}@${domain}`], body, "a@example.org", n) };
  });
}

/**
 * Runs deliverBatch: each message's result by its number (none may be reported twice, and the
 * summary counts those reported), and the sessions it opened.
 */
export async function runNumbered(
  domain: string,
  batch: readonly NumberedMessage[],
  opts: Parameters<typeof deliverBatch>[2],
): Promise<{ results: Map<number, DeliveryResult>; sessions: number }> {
  const results = new Map<number, DeliveryResult>();
  const summary = await deliverBatch(domain, batch, opts, (m, r) => {
    assert(!results.has(m.n), `message ${m.n} reported twice`);
    results.set(m.n, r);
  });
  assertEquals(summary.messages, results.size);
  return { results, sessions: summary.sessions };
}
