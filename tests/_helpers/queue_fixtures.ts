/**
 * Queue fixtures for store tests: recipients from their addresses, one message queued whole the
 * way the receiver does it, and maintenance options with the defaults most tests want.
 */
import type {
  Lease,
  MaintenanceOptions,
  MessageParams,
  NewRecipient,
  QueueStore,
} from "../../src/queue/types.ts";

const DAY_MS = 86_400_000;

/** A recipient of `address` (its domain is what follows the "@"); `extra` adds route, notify, … */
export function rcpt(address: string, extra: Partial<NewRecipient> = {}): NewRecipient {
  return { address, domain: address.slice(address.indexOf("@") + 1), ...extra };
}

/** One message to queue. */
export interface MessageSpec {
  /** The reverse-path; default "" (a bounce). */
  readonly from?: string;
  /** Addresses (see `rcpt`) or whole recipients. */
  readonly to: readonly (string | NewRecipient)[];
  readonly params?: MessageParams;
  /** Default: a short text message. */
  readonly body?: string | Uint8Array;
}

/** Queues one message: begin, write the body, commit. Returns its id. */
export async function queueMessage(store: QueueStore, m: MessageSpec): Promise<string> {
  const writer = await store.begin({
    mailFrom: m.from ?? "",
    params: m.params ?? {},
    recipients: m.to.map((r) => typeof r === "string" ? rcpt(r) : r),
  });
  const body = m.body ?? "Subject: t\r\n\r\nbody\r\n";
  await writer.write(typeof body === "string" ? new TextEncoder().encode(body) : body);
  await writer.commit();
  return writer.id;
}

/**
 * Maintenance options: host mx.test, mail kept 30 days, no local domain, outbound mail 5 days,
 * a delay notice after 4 hours, no reports to foreign senders; `overrides` change single ones.
 */
export function maintenanceOptions(
  overrides: Partial<MaintenanceOptions> = {},
): MaintenanceOptions {
  return {
    hostname: "mx.test",
    maxAgeMs: () => 30 * DAY_MS,
    isLocalDomain: () => false,
    outboundMaxAgeMs: 5 * DAY_MS,
    delayNoticeMs: 4 * 3_600_000,
    foreignBounceBudget: 0,
    ...overrides,
  };
}

/** Settles the first recipient of every other message `lease` offers as failed (550), from the `start`-th on. */
export async function failEveryOther(lease: Lease, start: 0 | 1): Promise<void> {
  const failed = [];
  let n = 0;
  for await (const m of lease.messages()) {
    const r = m.recipients[0];
    if (n++ % 2 === start && r !== undefined) {
      failed.push({ recipientId: r.id, outcome: "failed" as const, reply: "550 no" });
    }
  }
  await lease.settle(failed);
}
