/**
 * One ODMR drain of a store's mail for one domain to a scripted customer (the real drainLease
 * and SmtpSender over a connPair): what the customer got, what the drain logged and counted;
 * and the checks of a body the drain must refuse.
 */
import assert from "node:assert/strict";
import { drainLease, type DrainSummary } from "../../src/odmr/drain.ts";
import { NO_EVENTS } from "../../src/odmr/events.ts";
import type { QueueStore } from "../../src/queue/types.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { connPair } from "./conn_pair.ts";
import { type RecordedEvent, recordingLogger } from "./recording_logger.ts";
import { startScriptedServer } from "./scripted_server.ts";

/** What one drain did. */
export interface DrainedOnce {
  readonly summary: DrainSummary;
  /** The customer's command lines (MAIL, RCPT, DATA, BDAT, ...). */
  readonly commands: readonly string[];
  /** The bodies the customer received whole. */
  readonly bodies: readonly Uint8Array[];
  readonly events: readonly RecordedEvent[];
}

/** Claims `domain`, drains it to a customer that takes everything, releases the lease. */
export async function drainOnce(
  store: QueueStore,
  domain: string,
  extensions?: readonly string[],
): Promise<DrainedOnce> {
  const claimed = await store.claim([domain], { owner: "test|drain", leaseSeconds: 60 });
  assert.equal(claimed.kind, "claimed");
  const lease = (claimed as Extract<typeof claimed, { kind: "claimed" }>).lease;
  const { client, server: serverEnd } = connPair();
  const server = startScriptedServer(serverEnd, extensions === undefined ? {} : { extensions });
  const events: RecordedEvent[] = [];
  try {
    const summary = await drainLease({
      conn: client,
      reader: new LineReader(client),
      lease,
      user: "customer",
      log: recordingLogger(events),
      events: NO_EVENTS,
      options: { hostname: "provider.test", lineRecords: false, leaseSeconds: 60 },
    });
    return { summary, commands: server.commands, bodies: server.bodies, events };
  } finally {
    await lease.release();
    client.destroy();
    await server.done;
  }
}

/** Reads the body, counting what it yields before it fails. */
export async function bytesBeforeFailure(store: QueueStore, id: string): Promise<number> {
  let yielded = 0;
  await assert.rejects(
    async () => {
      for await (const chunk of store.readBody(id)) yielded += chunk.length;
    },
    new RegExp(`Cannot read body of message "${id}"`),
  );
  return yielded;
}

/**
 * A drain of `domain` sends nothing of message `id` (not even its envelope), logs why naming it,
 * and keeps its recipient queued with 451 for a retry.
 */
export async function assertDrainRefuses(
  store: QueueStore,
  id: string,
  domain: string,
): Promise<void> {
  const drained = await drainOnce(store, domain);
  assert.deepEqual(
    { delivered: drained.summary.delivered, deferred: drained.summary.deferred },
    { delivered: 0, deferred: 1 },
  );
  assert.deepEqual(drained.bodies, []);
  assert.ok(
    !drained.commands.some((c) => /^(MAIL|DATA|BDAT)/i.test(c)),
    drained.commands.join(" | "),
  );
  const logged = drained.events.filter((e) => e.event === "message_unreadable");
  assert.equal(logged.length, 1);
  assert.match(String(logged[0]?.fields.error), new RegExp(id));
  const kept = await store.get(id);
  assert.equal(kept?.recipients[0]?.status, "queued");
  assert.match(kept?.recipients[0]?.lastReply ?? "", /^451 4\.3\.0/);
}
