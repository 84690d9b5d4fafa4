/**
 * Lease times on PostgreSQL are the database's clock, in ms since the epoch: several nodes
 * share the leases, and each node's own clock may run ahead or behind the others'. A node
 * whose clock ran ahead by more than what was left of a lease saw another node's live lease
 * as expired and took it over (both drained the same mail). Claims, renewals and the
 * live-lease reads (maintenance's expiry check too) compute and compare `lease_until` with
 * the store's `LeaseClock`: `DATABASE_CLOCK` unless a test gives its own.
 */
import type postgres from "postgres";
import type { Sql, Tx } from "./connect.ts";

/** A SQL fragment that is now in ms, as bigint, for lease times. */
export type LeaseClock = (sql: Sql | Tx) => postgres.PendingQuery<postgres.Row[]>;

/** The database's clock (`clock_timestamp()`: when the statement reads it, not its transaction's start). */
export const DATABASE_CLOCK: LeaseClock = (sql) =>
  sql`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

/** Tests only: lease times from `now` (one node's clock), to step a lease's expiry by the ms. */
export function givenClock(now: () => number): LeaseClock {
  return (sql) => sql`${now()}::bigint`;
}

/**
 * How far the nodes' own clocks may disagree, for the due times (`next_attempt_at`) that an
 * outbound lease lists: they are compared with the claiming node's clock, which may run ahead
 * of the one whose maintenance pass asks whether a recipient is being sent. The pass counts a
 * recipient due this much later as part of a live lease of its domain too, so that it never
 * expires one another node is sending; it expires it at a later pass instead. Keep the
 * nodes on NTP (README).
 */
export const NODE_CLOCK_SKEW_MS = 60_000;
