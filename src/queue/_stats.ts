/**
 * The SQLite queue's counters: a domain's ATRN usage (quota, `domain_usage`) and the waiting
 * mail per route and domain (the gauges, `route_waiting`), both kept by triggers with the rows
 * (src/queue/_schema.ts), so each read is a lookup, not a walk over the recipients.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { countField } from "./_rows.ts";
import type { DomainStats, DomainUsage } from "./types.ts";

/** Reads of the counters. */
export class SqliteStats {
  readonly #waiting: StatementSync;
  readonly #oldestWaiting: StatementSync;
  readonly #usage: StatementSync;

  constructor(db: DatabaseSync) {
    this.#waiting = db.prepare(
      "SELECT route, domain, messages, bytes FROM route_waiting WHERE messages > 0 " +
        "ORDER BY domain, route",
    );
    // Ids sort by arrival: the smallest waiting id of a domain is its oldest message.
    this.#oldestWaiting = db.prepare(
      "SELECT received_at FROM messages WHERE id = (SELECT min(message_id) FROM recipients " +
        "WHERE domain = ? AND status = 'queued' AND route = ?)",
    );
    this.#usage = db.prepare("SELECT messages, bytes FROM domain_usage WHERE domain = ?");
  }

  /** Waiting mail per domain and route, sorted by domain then route. */
  domainStats(): DomainStats[] {
    const out: DomainStats[] = [];
    for (const row of this.#waiting.all()) {
      const { domain, messages, bytes } = row;
      const route: unknown = row.route;
      if (typeof domain !== "string" || typeof messages !== "number") continue;
      if (typeof bytes !== "number" || (route !== "atrn" && route !== "mx")) continue;
      const oldest: unknown = this.#oldestWaiting.get(domain, route)?.received_at;
      if (typeof oldest !== "number") continue;
      out.push({ domain, route, messages, bytes, oldestReceivedAt: oldest });
    }
    return out;
  }

  /** What `domain` holds for ATRN (route "atrn" only). */
  usage(domain: string): DomainUsage {
    const row: unknown = this.#usage.get(domain);
    return { messages: countField(row, "messages"), bytes: countField(row, "bytes") };
  }
}
