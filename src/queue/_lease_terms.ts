/**
 * What the SQLite and PostgreSQL leases share: the terms a lease was taken on (its domains,
 * owner, length, route and due time, and so its lease table) and the view of the queue it gives
 * (its route's queued recipients, each `delivering`). The SQL stays with each backend.
 */
import {
  type LeaseOptions,
  type MessageRow,
  type RecipientRow,
  toQueuedRecipient,
} from "./_rows.ts";
import type { QueuedMessage, Route } from "./types.ts";

/** A message as a backend's reader finds it, with the recipients the read is about. */
export interface FoundRows {
  readonly message: MessageRow;
  readonly recipients: readonly RecipientRow[];
}

/** A lease's terms, resolved once from its `LeaseOptions`. */
export class LeaseTerms {
  readonly domains: readonly string[];
  readonly owner: string;
  readonly leaseMs: number;
  readonly route: Route;
  /** Route "mx": the claim's time; the lease lists recipients due by then. */
  readonly dueBy: number | undefined;

  constructor(domains: readonly string[], opts: LeaseOptions) {
    this.domains = [...domains];
    this.owner = opts.owner;
    this.leaseMs = opts.leaseSeconds * 1000;
    this.route = opts.route ?? "atrn";
    this.dueBy = opts.dueBy;
  }

  /** The lease table of the route's namespace: an mx lease never blocks an ATRN claim. */
  get table(): "domain_leases" | "outbound_leases" {
    return this.route === "mx" ? "outbound_leases" : "domain_leases";
  }

  /** Which recipients the lease lists: its route's, due by the claim's time for route mx. */
  get view(): { readonly route: Route; readonly dueBy?: number } {
    return { route: this.route, ...(this.dueBy !== undefined ? { dueBy: this.dueBy } : {}) };
  }
}

/** A lease's messages as its session sees them: every recipient listed is `delivering`. */
export async function* leasedMessages(
  found: Iterable<FoundRows> | AsyncIterable<FoundRows>,
): AsyncGenerator<QueuedMessage> {
  for await (const { message, recipients } of found) {
    yield { ...message, recipients: recipients.map((r) => toQueuedRecipient(r, "delivering")) };
  }
}
