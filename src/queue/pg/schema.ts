/**
 * Numbered schema migrations of the PostgreSQL backend (component "queue" in
 * `schema_version`, like the SQLite file), applied under an advisory lock so that several
 * nodes starting at once apply each step exactly once. Append steps; never edit a shipped one.
 */
import { errorText } from "../../errors.ts";
import type { Sql } from "./connect.ts";
import { PgDeadlineError, statementTimeoutFor, within } from "./_deadline.ts";
import { PG_GAUGE_MIGRATION } from "./_gauges.ts";

/** Advisory lock key of migrations (any constant that no other user of the database takes). */
const MIGRATION_LOCK = 0x6f646d72; // "odmr"

/** Steps; index i is schema version i+1. */
export const PG_QUEUE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE messages (
    id text PRIMARY KEY,
    received_at bigint NOT NULL,
    mail_from text NOT NULL,
    size bigint NOT NULL,
    params text NOT NULL
  );
  CREATE INDEX messages_received ON messages (received_at, id);
  -- No foreign key: chunks are written (and committed) before their message row exists.
  CREATE TABLE message_chunks (
    message_id text NOT NULL,
    seq integer NOT NULL,
    bytes bytea NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (message_id, seq)
  );
  CREATE TABLE recipients (
    id bigserial PRIMARY KEY,
    message_id text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    address text NOT NULL,
    domain text NOT NULL,
    status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    last_reply text,
    notify text,
    orcpt text,
    expired_at bigint
  );
  -- A domain's messages in id order (ids sort by arrival): ATRN reads only its own rows.
  CREATE INDEX recipients_domain_status_message ON recipients (domain, status, message_id);
  CREATE INDEX recipients_message ON recipients (message_id);
  CREATE INDEX recipients_expired ON recipients (expired_at) WHERE expired_at IS NOT NULL;
  CREATE TABLE domain_leases (
    domain text PRIMARY KEY,
    owner text NOT NULL,
    lease_until bigint NOT NULL
  );
  -- The last successful ATRN per user (metrics), and the users, domains and verifiers as one
  -- versioned snapshot that every node mirrors (src/cli/_backend_pg.ts).
  CREATE TABLE user_state (
    "user" text PRIMARY KEY,
    last_atrn_success bigint NOT NULL
  );
  CREATE TABLE auth_state (
    id integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL,
    rows jsonb NOT NULL
  );
  INSERT INTO auth_state (id, version, rows) VALUES (1, 0, '{}');
  `,
  // 2: the outbound queue (mail to other domains' MX hosts) in the same tables, as in the
  // SQLite file's step 5: `route`, `next_attempt_at` (when an mx recipient is due again),
  // `delay_notified` (the one delay DSN of a message went out) and outbound leases apart.
  `
  ALTER TABLE recipients ADD COLUMN route text NOT NULL DEFAULT 'atrn'
    CHECK (route IN ('atrn', 'mx'));
  ALTER TABLE recipients ADD COLUMN next_attempt_at bigint;
  ALTER TABLE messages ADD COLUMN delay_notified boolean NOT NULL DEFAULT false;
  CREATE INDEX recipients_mx_due ON recipients (next_attempt_at, domain)
    WHERE route = 'mx' AND status = 'queued';
  CREATE TABLE outbound_leases (
    domain text PRIMARY KEY,
    owner text NOT NULL,
    lease_until bigint NOT NULL
  );
  `,
  PG_GAUGE_MIGRATION,
  // 4: mx recipients refused for good stay 'failed' until outbound.max_age, then expire and
  // are removed (as the SQLite file's step 6): found without a walk over the recipients.
  `
  CREATE INDEX recipients_mx_failed ON recipients (message_id)
    WHERE route = 'mx' AND status = 'failed' AND expired_at IS NULL;
  `,
  // 5: the DKIM signing keys (src/dkim/pg_keys.ts): every node signs with the same keys. A
  // key is inserted once and never updated; `dkim remove` deletes its row.
  `
  CREATE TABLE dkim_keys (
    domain text NOT NULL,
    selector text NOT NULL,
    pem text NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (domain, selector)
  );
  `,
  // 6: a recipient settled failed has its failure report pending until that report is queued,
  // as the SQLite file's step 11 (the same table, the same reasons).
  `
  CREATE TABLE report_pending (
    message_id text NOT NULL,
    recipient_id bigint NOT NULL,
    PRIMARY KEY (message_id, recipient_id)
  );
  `,
  // 7: the ids of the messages `queue migrate` copied from a SQLite queue (_import.ts): a
  // message copied once is never copied again, not even after the nodes delivered it and its
  // rows are gone. Ids only; rows stay for as long as the database (README "Moving an existing
  // SQLite queue").
  `
  CREATE TABLE migrated_messages (
    id text PRIMARY KEY
  );
  `,
  // 8: the user whose AUTH submitted a message, as the SQLite file's step 13 (NULL for received
  // mail, the nodes' own reports and rows of before this step).
  `
  ALTER TABLE messages ADD COLUMN submitter text;
  `,
];

/**
 * How long each statement of the migrations may wait for its answer, the wait for another
 * node's migrations included. Past it serve's start fails (`startup_failed`) instead of waiting
 * for good on a server gone silent, and the step in progress is rolled back. Long on purpose: a
 * step takes milliseconds on an empty queue, but an index or a recount over millions of rows on a
 * slow disk takes minutes, and a bound it cannot meet would fail every start of an upgrade. A
 * server silent from the start is caught sooner, by the pool's first query (connect.ts).
 */
export const PG_MIGRATION_DEADLINE_MS = 15 * 60_000;

/**
 * How a step waits for its table locks. PostgreSQL queues every later lock on a table behind a
 * waiting `ALTER TABLE` (ACCESS EXCLUSIVE): while a step waited for a long transaction on
 * `messages`, every node's reads and writes of it waited too, past their 10 s deadlines. So a
 * step waits at most `waitMs` for a lock (`lock_timeout`), is rolled back (nothing applied) and
 * tried again after a pause (250 ms doubling to 8 s), until `retryForMs` have passed since its
 * first try: then the start fails naming the lock wait. Only the wait for locks is bounded so;
 * the step's own work keeps the migration deadline.
 */
export interface PgLockRetry {
  readonly waitMs: number;
  readonly retryForMs: number;
}

/** 2 s per try, well below the nodes' 10 s call deadline; tries for 2 minutes. */
export const PG_MIGRATION_LOCK_RETRY: PgLockRetry = { waitMs: 2_000, retryForMs: 120_000 };

const FIRST_PAUSE_MS = 250;
const LONGEST_PAUSE_MS = 8_000;

/** True for a step given up by its `lock_timeout` (55P03) or chosen to end a deadlock (40P01). */
function isLockWait(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return err instanceof Error && err.name === "PostgresError" &&
    (code === "55P03" || code === "40P01");
}

/**
 * Applies the steps not yet applied; throws naming the step that failed. Each step is one
 * transaction with its version row, so the schema is always that of the version it records:
 * a step cut short (an error, or no answer within `deadlineMs`) leaves the schema as it was.
 * Each statement waits at most `deadlineMs`, and the server is told the same bound
 * (`statement_timeout`, `idle_in_transaction_session_timeout`; `lock_timeout` while waiting
 * for another node's migrations). A step's DDL holds locks that every node's queries queue
 * behind, and they queue behind it while it waits for a lock too: a step waits for its locks
 * as `lockRetry` says (PgLockRetry). Past the deadline the connection is
 * dropped (a ROLLBACK sent on a silent one would never be answered): the server then ends
 * the transaction and the session's advisory lock with it.
 */
export async function applyPgMigrations(
  sql: Sql,
  deadlineMs: number = PG_MIGRATION_DEADLINE_MS,
  lockRetry: PgLockRetry = PG_MIGRATION_LOCK_RETRY,
): Promise<void> {
  const conn = await within(sql.reserve(), deadlineMs, "a connection").catch((err) => {
    throw new Error(`Cannot migrate database schema for "queue": ${errorText(err)}`);
  });
  let isDropped = false;
  /** `query`'s answer within the deadline; past it, the connection is dropped. */
  const answer = async <T>(query: PromiseLike<T>, what: string): Promise<T> => {
    try {
      return await within(query, deadlineMs, what);
    } catch (err) {
      if (err instanceof PgDeadlineError) {
        isDropped = true;
        (query as { connection?: { destroy?: () => void } }).connection?.destroy?.();
      }
      throw err;
    }
  };
  const serverBound = `${statementTimeoutFor(deadlineMs)}ms`;
  try {
    try {
      // lock_timeout: the server ends the wait itself, with an answer, before the deadline.
      // No statement_timeout meanwhile: the pool's own (its calls' deadline, shorter) ended
      // the wait for another node's migration long before this one's deadline.
      await answer(
        conn`SELECT set_config('lock_timeout', ${serverBound}, false),
          set_config('statement_timeout', '0', false)`,
        "schema migration",
      );
      try {
        await answer(conn`SELECT pg_advisory_lock(${MIGRATION_LOCK})`, "schema migration");
      } finally {
        if (!isDropped) await answer(conn`RESET lock_timeout`, "schema migration");
        if (!isDropped) await answer(conn`RESET statement_timeout`, "schema migration");
      }
    } catch (err) {
      throw new Error(
        `Cannot migrate database schema for "queue": waiting for another node's ` +
          `migration: ${errorText(err)}`,
      );
    }
    try {
      await answer(
        conn`CREATE TABLE IF NOT EXISTS schema_version (
          component text PRIMARY KEY, version integer NOT NULL)`,
        "schema_version table",
      );
      const [row] = await answer(
        conn`SELECT version FROM schema_version WHERE component = 'queue'`,
        "schema version",
      );
      const current = Number(row?.version ?? 0);
      if (current > PG_QUEUE_MIGRATIONS.length) {
        throw new Error(
          `Cannot use database schema for "queue": version ${current} is newer than this ` +
            `program knows (${PG_QUEUE_MIGRATIONS.length})`,
        );
      }
      const lockWait = `${Math.min(lockRetry.waitMs, statementTimeoutFor(deadlineMs))}ms`;
      for (let i = current; i < PG_QUEUE_MIGRATIONS.length; i++) {
        const what = "migration step";
        const firstTry = performance.now();
        for (let attempt = 1, pause = FIRST_PAUSE_MS;; attempt++) {
          try {
            await answer(conn`BEGIN`, what);
            await answer(
              conn`SELECT set_config('lock_timeout', ${lockWait}, true),
                set_config('statement_timeout', ${serverBound}, true),
                set_config('idle_in_transaction_session_timeout', ${`${deadlineMs}ms`}, true)`,
              what,
            );
            await answer(conn.unsafe(PG_QUEUE_MIGRATIONS[i] ?? ""), what);
            await answer(
              conn`INSERT INTO schema_version (component, version) VALUES ('queue', ${i + 1})
                ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version`,
              what,
            );
            await answer(conn`COMMIT`, what);
            break;
          } catch (err) {
            if (!isDropped) await answer(conn`ROLLBACK`, what).catch(() => {});
            const waited = performance.now() - firstTry;
            if (!isDropped && isLockWait(err) && waited + pause < lockRetry.retryForMs) {
              await new Promise((r) => setTimeout(r, pause));
              pause = Math.min(pause * 2, LONGEST_PAUSE_MS);
              continue;
            }
            const locked = !isDropped && isLockWait(err)
              ? `its tables stayed locked by other sessions for ${lockRetry.retryForMs} ms ` +
                `(lock_timeout ${lockRetry.waitMs} ms, ${attempt} attempts): `
              : "";
            throw new Error(
              `Cannot migrate database schema for "queue" to version ${i + 1}: ${locked}` +
                errorText(err),
            );
          }
        }
      }
    } finally {
      if (!isDropped) {
        await within(
          conn`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`,
          deadlineMs,
          "schema migration",
        ).catch(() => {});
      }
    }
  } catch (err) {
    if (err instanceof PgDeadlineError) {
      throw new Error(`Cannot migrate database schema for "queue": ${errorText(err)}`);
    }
    throw err;
  } finally {
    conn.release();
  }
}
