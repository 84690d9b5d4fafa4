/**
 * The queue gauges on PostgreSQL without a scan of the queue (what SQLite's `route_waiting`
 * does, src/queue/_schema.ts steps 4-5): per route and domain, the messages with at least one
 * `queued` recipient there and their bytes. SQLite keeps one counter row per domain; here
 * several nodes write at once, and one hot row per domain would make every transaction that
 * touches the domain wait for the others' commits (and two of them could deadlock over two
 * domains). So the triggers only append signed deltas (`waiting_deltas`: no row is ever
 * updated by a session), and a scrape folds them into one row per domain before it reads.
 *
 * The triggers are BEFORE row triggers: a statement that inserts, settles or requeues two
 * recipients of one message in one domain sees its earlier rows there, so the message is
 * counted once, as with SQLite's per-row triggers. Two transactions changing recipients of the
 * same message and domain at the same moment (an operator's delete during a drain) can miss
 * each other under READ COMMITTED; an hourly recount from the tables puts any such drift right.
 */
import type { DomainStats } from "../types.ts";
import type { Sql } from "./connect.ts";
import { PG_CALL_DEADLINE_MS, transactionWithin, within } from "./_deadline.ts";

/** Migration step (appended to PG_QUEUE_MIGRATIONS by schema.ts). */
export const PG_GAUGE_MIGRATION = `
  CREATE TABLE waiting_deltas (
    route text NOT NULL,
    domain text NOT NULL,
    messages bigint NOT NULL,
    bytes bigint NOT NULL
  );
  INSERT INTO waiting_deltas (route, domain, messages, bytes)
    SELECT route, domain, count(*), sum(size) FROM (
      SELECT DISTINCT r.route, r.domain, m.id, m.size
      FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.status = 'queued'
    ) x GROUP BY route, domain;
  CREATE FUNCTION recipients_waiting() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND OLD.status <> 'queued') THEN
      IF NEW.status = 'queued' AND NOT EXISTS (SELECT 1 FROM recipients
          WHERE domain = NEW.domain AND status = 'queued' AND message_id = NEW.message_id
            AND route = NEW.route AND id <> NEW.id) THEN
        INSERT INTO waiting_deltas (route, domain, messages, bytes)
          SELECT NEW.route, NEW.domain, 1,
            coalesce((SELECT size FROM messages WHERE id = NEW.message_id), 0);
      END IF;
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND NEW.status <> 'queued') THEN
      IF OLD.status = 'queued' AND NOT EXISTS (SELECT 1 FROM recipients
          WHERE domain = OLD.domain AND status = 'queued' AND message_id = OLD.message_id
            AND route = OLD.route AND id <> OLD.id) THEN
        -- Gone with its message (the cascade): messages_waiting already counted it out.
        INSERT INTO waiting_deltas (route, domain, messages, bytes)
          SELECT OLD.route, OLD.domain, -1, -m.size FROM messages m WHERE m.id = OLD.message_id;
      END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN
      RETURN OLD;
    END IF;
    RETURN NEW;
  END $$;
  CREATE TRIGGER recipients_waiting BEFORE INSERT OR DELETE OR UPDATE OF status ON recipients
    FOR EACH ROW EXECUTE FUNCTION recipients_waiting();
  CREATE FUNCTION messages_waiting() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    INSERT INTO waiting_deltas (route, domain, messages, bytes)
      SELECT DISTINCT route, domain, -1::bigint, -OLD.size FROM recipients
      WHERE message_id = OLD.id AND status = 'queued';
    RETURN OLD;
  END $$;
  CREATE TRIGGER messages_waiting BEFORE DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_waiting();
`;

/** Advisory lock of the fold and the recount ("odmg"): one at a time, cluster-wide. */
export const GAUGES_LOCK = 0x6f646d67;
/** How often a node recounts from the tables (the drift note above). */
const RECOUNT_MS = 60 * 60 * 1000;

/** Reads the gauges, folding the deltas first (and recounting now and then). */
export class PgGauges {
  readonly #sql: Sql;
  readonly #now: () => number;
  #recountedAt: number | undefined;

  readonly #deadlineMs: number;

  constructor(sql: Sql, now: () => number, deadlineMs = PG_CALL_DEADLINE_MS) {
    this.#sql = sql;
    this.#now = now;
    this.#deadlineMs = deadlineMs;
  }

  async stats(): Promise<DomainStats[]> {
    const isRecount = this.#recountedAt === undefined ||
      this.#now() - this.#recountedAt >= RECOUNT_MS;
    const totals = await transactionWithin(this.#sql, this.#deadlineMs, "gauges", async (tx) => {
      // Taken before the next statement's snapshot: it then sees the other's fold committed.
      await tx`SELECT pg_advisory_xact_lock(${GAUGES_LOCK})`;
      // One statement, one snapshot: deltas committed later are neither deleted nor counted.
      return isRecount
        ? await tx`WITH gone AS (DELETE FROM waiting_deltas)
            INSERT INTO waiting_deltas (route, domain, messages, bytes)
            SELECT route, domain, count(*), sum(size) FROM (
              SELECT DISTINCT r.route, r.domain, m.id, m.size
              FROM recipients r JOIN messages m ON m.id = r.message_id
              WHERE r.status = 'queued') x
            GROUP BY route, domain RETURNING route, domain, messages::float8, bytes::float8`
        : await tx`WITH gone AS (DELETE FROM waiting_deltas RETURNING *)
            INSERT INTO waiting_deltas (route, domain, messages, bytes)
            SELECT route, domain, sum(messages), sum(bytes) FROM gone GROUP BY route, domain
            HAVING sum(messages) <> 0 OR sum(bytes) <> 0
            RETURNING route, domain, messages::float8, bytes::float8`;
    }, () => {});
    if (isRecount) this.#recountedAt = this.#now();
    const waiting = totals.filter((t) => Number(t.messages) > 0)
      .map((t) => ({ route: String(t.route), domain: String(t.domain) }))
      .sort((a, b) =>
        a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : a.route < b.route ? -1 : 1
      );
    // Ids sort by arrival: a domain's smallest waiting id is its oldest message (one index
    // lookup per domain, all in one statement).
    const oldest = waiting.length === 0 ? [] : await within(
      this.#sql`SELECT d.route, d.domain,
        (SELECT m.received_at FROM messages m WHERE m.id = (SELECT min(r.message_id)
          FROM recipients r WHERE r.domain = d.domain AND r.status = 'queued'
            AND r.route = d.route))::float8 AS oldest
      FROM unnest(${waiting.map((w) => w.route)}::text[],
        ${waiting.map((w) => w.domain)}::text[]) AS d(route, domain)`,
      this.#deadlineMs,
      "gauges",
    );
    const oldestOf = new Map(oldest.map((o) => [`${o.route} ${o.domain}`, o.oldest]));
    const byKey = new Map(totals.map((t) => [`${t.route} ${t.domain}`, t]));
    return waiting.map((w) => {
      const t = byKey.get(`${w.route} ${w.domain}`);
      return {
        domain: w.domain,
        route: w.route === "mx" ? "mx" as const : "atrn" as const,
        messages: Number(t?.messages ?? 0),
        bytes: Number(t?.bytes ?? 0),
        oldestReceivedAt: Number(oldestOf.get(`${w.route} ${w.domain}`) ?? 0),
      };
    });
  }
}
