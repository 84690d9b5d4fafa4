/**
 * The SQLite triggers that keep per-domain message counters (`domain_usage` for quotas, the
 * gauges' `domain_waiting` and then `route_waiting`) in the same transactions as the rows, for
 * the migration steps of _schema.ts. A counter holds, per key, the messages with at least one
 * counted recipient there and their bytes: a recipient row counts its message in when it is the
 * first counted one of its message and key, and out when it was the last.
 *
 * The text these return is the text those steps have always run (a test pins each step's
 * hash): a shipped step never changes, and a new one composes the same pieces.
 */

/** A counter table and its key: the domain, or the route and the domain. */
interface Counter {
  readonly table: string;
  readonly byRoute: boolean;
}

/**
 * A per-domain counter table, filled from the rows already there: every recipient's message
 * (`domain_usage`, step 2), or only those with a `queued` recipient (`domain_waiting`, step 4).
 */
export function createDomainCounter(table: "domain_usage" | "domain_waiting"): string {
  const queuedOnly = table === "domain_waiting" ? "\n      WHERE r.status = 'queued'" : "";
  return `  CREATE TABLE ${table} (
    domain TEXT PRIMARY KEY,
    messages INTEGER NOT NULL,
    bytes INTEGER NOT NULL
  );
  INSERT INTO ${table} (domain, messages, bytes)
    SELECT domain, count(*), sum(size) FROM (
      SELECT DISTINCT r.domain, m.id, m.size FROM recipients r JOIN messages m ON m.id = r.message_id${queuedOnly}
    ) GROUP BY domain;`;
}

/**
 * The quota counter `domain_usage`: messages and bytes per domain, of every recipient
 * (`atrnOnly` false: step 2) or of route 'atrn' ones only (step 5). The recipients of a message
 * are looked up by the message index: the planner might otherwise walk all of a domain's rows.
 */
export function usageTriggers(atrnOnly: boolean): string {
  const counter: Counter = { table: "domain_usage", byRoute: false };
  const onlyNew = atrnOnly ? "NEW.route = 'atrn' AND " : "";
  const onlyOld = atrnOnly ? "OLD.route = 'atrn' AND " : "";
  const route = atrnOnly ? " AND route = 'atrn'" : "";
  return [
    trigger(
      "recipients_usage_insert AFTER INSERT ON recipients",
      `${onlyNew}NOT EXISTS (SELECT 1 FROM recipients INDEXED BY recipients_message
    WHERE message_id = NEW.message_id AND domain = NEW.domain${route} AND id <> NEW.id)`,
      countIn(counter),
    ),
    trigger(
      "recipients_usage_delete AFTER DELETE ON recipients",
      `${onlyOld}EXISTS (SELECT 1 FROM messages WHERE id = OLD.message_id)
    AND NOT EXISTS (SELECT 1 FROM recipients INDEXED BY recipients_message
      WHERE message_id = OLD.message_id AND domain = OLD.domain${route})`,
      countOut(counter, MESSAGE_SIZE),
    ),
    trigger(
      "messages_usage_delete BEFORE DELETE ON messages",
      undefined,
      countOutMessage(counter, route),
    ),
  ].join("\n");
}

/**
 * The gauges' counter of waiting mail: the messages with a `queued` recipient and their bytes,
 * per domain in `domain_waiting` (step 4), per route and domain in `route_waiting` (step 5).
 * A recipient leaves it when settled or expired, returns when requeued.
 */
export function waitingTriggers(table: "domain_waiting" | "route_waiting"): string {
  const counter: Counter = { table, byRoute: table === "route_waiting" };
  return [
    trigger(
      "recipients_waiting_insert AFTER INSERT ON recipients",
      `NEW.status = 'queued' AND ${noOtherQueued(counter, "NEW", "    ", true)}`,
      countIn(counter),
    ),
    trigger(
      "recipients_waiting_delete AFTER DELETE ON recipients",
      `OLD.status = 'queued' AND EXISTS (SELECT 1 FROM messages WHERE id = OLD.message_id)
    AND ${noOtherQueued(counter, "OLD", "      ", false)}`,
      countOut(counter, MESSAGE_SIZE),
    ),
    trigger(
      "recipients_waiting_leave AFTER UPDATE OF status ON recipients",
      `OLD.status = 'queued' AND NEW.status <> 'queued' AND ${
        noOtherQueued(counter, "OLD", "    ", false)
      }`,
      countOut(counter, `coalesce(${MESSAGE_SIZE}, 0)`),
    ),
    trigger(
      "recipients_waiting_return AFTER UPDATE OF status ON recipients",
      `OLD.status <> 'queued' AND NEW.status = 'queued' AND ${
        noOtherQueued(counter, "NEW", "    ", true)
      }`,
      countIn(counter),
    ),
    trigger(
      "messages_waiting_delete BEFORE DELETE ON messages",
      undefined,
      countOutMessage(counter, " AND status = 'queued'"),
    ),
  ].join("\n");
}

/** The size of OLD's message (NULL once the message row is gone). */
const MESSAGE_SIZE = "(SELECT size FROM messages WHERE id = OLD.message_id)";

function trigger(head: string, when: string | undefined, body: string): string {
  return `  CREATE TRIGGER ${head}\n${when === undefined ? "" : `  WHEN ${when}\n`}  BEGIN
${body}
  END;`;
}

/** No other `queued` recipient of `row`'s message under the same key (`row` itself aside). */
function noOtherQueued(c: Counter, row: string, indent: string, besidesRow: boolean): string {
  const more = [
    ...(c.byRoute ? [`route = ${row}.route`] : []),
    ...(besidesRow ? [`id <> ${row}.id`] : []),
  ];
  return `NOT EXISTS (SELECT 1 FROM recipients
${indent}WHERE domain = ${row}.domain AND status = 'queued' AND message_id = ${row}.message_id${
    more.length > 0 ? `\n${indent}  AND ${more.join(" AND ")}` : ""
  })`;
}

/** Counts NEW's message in under NEW's key. */
function countIn(c: Counter): string {
  const key = c.byRoute ? "route, domain" : "domain";
  const values = c.byRoute ? "NEW.route, NEW.domain, 1,\n        " : "NEW.domain, 1, ";
  return `    INSERT INTO ${c.table} (${key}, messages, bytes)
      VALUES (${values}coalesce((SELECT size FROM messages WHERE id = NEW.message_id), 0))
      ON CONFLICT (${key}) DO UPDATE SET
        messages = messages + 1, bytes = bytes + excluded.bytes;`;
}

/** Counts OLD's message (of `size` bytes) out under OLD's key. */
function countOut(c: Counter, size: string): string {
  return `    UPDATE ${c.table} SET messages = messages - 1,
      bytes = bytes - ${size}
      WHERE ${c.byRoute ? "route = OLD.route AND " : ""}domain = OLD.domain;`;
}

/** Counts a deleted message out under every key its counted recipients (`filter`) are in. */
function countOutMessage(c: Counter, filter: string): string {
  const keys = c.byRoute
    ? "(route, domain) IN (SELECT DISTINCT route, domain FROM recipients\n        WHERE"
    : "domain IN (SELECT domain FROM recipients WHERE";
  return `    UPDATE ${c.table} SET messages = messages - 1, bytes = bytes - OLD.size
      WHERE ${keys} message_id = OLD.id${filter});`;
}
