/**
 * Numbered migrations of the queue tables (component "queue" in `schema_version`).
 * Append new steps; never edit a step that has shipped (tests/queue/schema_steps_test.ts pins
 * their text). The triggers that keep the per-domain counters come from _schema_counters.ts.
 */

import { createDomainCounter, usageTriggers, waitingTriggers } from "./_schema_counters.ts";

/** Migration steps; index i is schema version i+1. */
export const QUEUE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL,
    mail_from TEXT NOT NULL,
    size INTEGER NOT NULL,
    params TEXT NOT NULL
  );
  CREATE INDEX messages_received ON messages (received_at, id);
  -- No foreign key: chunks are written before their message row exists (streaming).
  CREATE TABLE message_chunks (
    message_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (message_id, seq)
  );
  CREATE TABLE recipients (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    domain TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_reply TEXT,
    notify TEXT,
    orcpt TEXT
  );
  CREATE INDEX recipients_domain_status ON recipients (domain, status);
  CREATE INDEX recipients_message ON recipients (message_id);
  CREATE TABLE domain_leases (
    domain TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    lease_until INTEGER NOT NULL
  );
  `,
  // 2: expiry and quotas. An expired recipient keeps status 'failed' (so no lease picks it
  // up; the CHECK of step 1 cannot change without a table rebuild) and has `expired_at` set.
  // `domain_usage` counts, per domain, the messages with a recipient there and their bytes,
  // kept by triggers in the same transactions as the rows (the quota check is one lookup).
  // The BEFORE DELETE on messages runs before the cascade, while the recipients still exist;
  // the recipients trigger skips rows whose message is already gone (the cascade).
  // INDEXED BY: without it the planner may walk (domain, status), all of a domain's rows.
  `
  ALTER TABLE recipients ADD COLUMN expired_at INTEGER;
  CREATE INDEX recipients_expired ON recipients (expired_at) WHERE expired_at IS NOT NULL;
${createDomainCounter("domain_usage")}
${usageTriggers(false)}
  `,
  // 3: a domain's messages in id order straight from the index (ids sort by arrival time), so
  // that ATRN and `queue list --domain` read only the domain's own rows, however much mail
  // other domains hold (issue 13). It replaces (domain, status), which is its prefix.
  `
  CREATE INDEX recipients_domain_status_message ON recipients (domain, status, message_id);
  DROP INDEX recipients_domain_status;
  `,
  // 4: what the queue gauges show, kept like `domain_usage` by triggers in the same
  // transactions as the rows: per domain, the messages with at least one `queued` recipient
  // there (expired and failed ones are not waiting) and their bytes. A scrape reads one row a
  // domain instead of every queued recipient (issue 13). The oldest is one index lookup.
  `
${createDomainCounter("domain_waiting")}
${waitingTriggers("domain_waiting")}
  `,
  // 5: the outbound queue (mail to other domains' MX hosts) in the same tables. `route` says
  // where a recipient goes ('atrn': collected by its owner; 'mx': delivered to its domain's
  // MX), `next_attempt_at` when an mx recipient is due again, `delay_notified` that the one
  // delay DSN of a message went out (never twice, across restarts). Outbound leases are a
  // namespace of their own (`outbound_leases`): an mx lease never blocks an ATRN claim. Quotas
  // (`domain_usage`) count route 'atrn' only; the gauges (`route_waiting`, replacing
  // `domain_waiting`) are kept per route and domain by the same triggers, route-aware.
  `
  ALTER TABLE recipients ADD COLUMN route TEXT NOT NULL DEFAULT 'atrn'
    CHECK (route IN ('atrn', 'mx'));
  ALTER TABLE recipients ADD COLUMN next_attempt_at INTEGER;
  ALTER TABLE messages ADD COLUMN delay_notified INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX recipients_mx_due ON recipients (next_attempt_at, domain)
    WHERE route = 'mx' AND status = 'queued';
  CREATE TABLE outbound_leases (
    domain TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    lease_until INTEGER NOT NULL
  );
  DROP TRIGGER recipients_usage_insert;
  DROP TRIGGER recipients_usage_delete;
  DROP TRIGGER messages_usage_delete;
${usageTriggers(true)}
  CREATE TABLE route_waiting (
    route TEXT NOT NULL,
    domain TEXT NOT NULL,
    messages INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (route, domain)
  );
  INSERT INTO route_waiting (route, domain, messages, bytes)
    SELECT 'atrn', domain, messages, bytes FROM domain_waiting;
  DROP TRIGGER recipients_waiting_insert;
  DROP TRIGGER recipients_waiting_delete;
  DROP TRIGGER recipients_waiting_leave;
  DROP TRIGGER recipients_waiting_return;
  DROP TRIGGER messages_waiting_delete;
  DROP TABLE domain_waiting;
${waitingTriggers("route_waiting")}
  `,
  // 6: mx recipients refused for good (5xx at their MX) stay 'failed' until outbound.max_age
  // like ATRN mail until its max_age, then expire and are removed: this finds them without a
  // walk over the recipients (they are not in domain_usage, which counts route 'atrn').
  `
  CREATE INDEX recipients_mx_failed ON recipients (message_id)
    WHERE route = 'mx' AND status = 'failed' AND expired_at IS NULL;
  `,
  // 7: a body shorter than one chunk row goes in its message's row (`body`), not in
  // `message_chunks`: one statement and two b-tree pages (the chunks' table and key) fewer in
  // each commit (issue 13). NULL: the body is in `message_chunks`, as for rows written before
  // this step, by a serve started before it (still running while a newer `queue` command
  // applied it), for longer bodies and for the reports maintenance queues. An older serve
  // reads bodies only from `message_chunks`: it must never drain beside a newer one. From this
  // version on, serve holds the data directory's lock (serve_lock.ts), so a second serve
  // cannot start; an older serve does not take it, so an upgrade is stop, replace, start.
  `
  ALTER TABLE messages ADD COLUMN body BLOB;
  `,
  // 8: a body of a chunk or more is in a file of its own, `data_dir/bodies/<body_file>`
  // (src/queue/_body_files.ts, issue 13): written once and synced off the event loop instead of
  // twice through the WAL. NULL: `body` or `message_chunks` as before (rows of before this step,
  // in-memory databases, the reports maintenance queues, other processes than serve). Same
  // upgrade rule as step 7: an older serve would read such a body as empty; stop it first.
  `
  ALTER TABLE messages ADD COLUMN body_file TEXT;
  `,
  // 9: `body_file` may name a part of a segment file shared by several bodies,
  // `<segment>@<offset>` (src/queue/_body_segment.ts, issue 13). No table changes: the step is
  // there so that an older program refuses the database instead of reading such a name as a
  // missing file, or removing a segment at start as a file no row names.
  `
  SELECT 1;
  `,
  // 10: a segment body's name also says its length, `<segment>@<offset>+<length>`, checked
  // against the row's `size` before a byte is sent (src/queue/_body_segment.ts). No table
  // changes: the step is there for the same reason as step 9. A program of step 9 cannot parse
  // such a name: its serve would remove, at start, every segment named only that way (all the
  // bodies received since), and its `queue` commands could not read them.
  `
  SELECT 10;
  `,
  // 11: a recipient settled failed has its failure report pending until that report is queued
  // (or decided against: `<>`, NOTIFY, the foreign-bounce limit), written in the settlement's
  // own transaction: a report whose write failed, or a crash between the two commits, is sent
  // by the next maintenance pass instead of never (src/queue/_expiry.ts). No foreign key, so
  // that deleting a delivered recipient looks nothing up here; maintenance drops rows whose
  // recipient is gone. Keyed by message first: a row id alone may be reused (types.ts
  // `Settlement.messageId`).
  `
  CREATE TABLE IF NOT EXISTS report_pending (
    message_id TEXT NOT NULL,
    recipient_id INTEGER NOT NULL,
    PRIMARY KEY (message_id, recipient_id)
  );
  `,
  // 12: `queue migrate` copied this queue into PostgreSQL (moved_mark.ts): one row, set before
  // the first message is copied. A SQLite serve refuses the queue while it is there (it would
  // deliver every copied message again); `queue migrate --clear-mark` deletes it.
  `
  CREATE TABLE IF NOT EXISTS queue_moved (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    moved_at INTEGER NOT NULL
  );
  `,
  // 13: the user whose AUTH submitted a message (the submission port; NULL for received mail,
  // the server's own reports and rows of before this step). The outbound signer signs a
  // `MAIL FROM:<>` message by its From domain only when that domain is its submitter's
  // (src/cli/_serve_outbound.ts): `<>` has no sender domain to find the key's owner by.
  `
  ALTER TABLE messages ADD COLUMN submitter TEXT;
  `,
];
