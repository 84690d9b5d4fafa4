/**
 * Numbered migrations of the queue tables (component "queue" in `schema_version`).
 * Append new steps; never edit a step that has shipped.
 */

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
];
