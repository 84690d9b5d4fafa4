/** Shared pieces of the drain tests: a queued message as a lease yields it. */
import type { QueuedMessage } from "../../src/queue/types.ts";

/** Message `m<n>` with one queued ATRN recipient (id `n`, u<n>@customer.test) of `size` octets. */
export function queuedMessage(n: number, size: number): QueuedMessage {
  return {
    id: `m${n}`,
    receivedAt: Date.now(),
    mailFrom: "sender@example.org",
    size,
    params: {},
    recipients: [{
      id: n,
      address: `u${n}@customer.test`,
      domain: "customer.test",
      route: "atrn",
      status: "queued",
      attempts: 0,
    }],
  };
}
