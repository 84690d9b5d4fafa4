/**
 * Connects to the PostgreSQL database of `queue.postgres` (postgres.js, vendor/postgres): the
 * password comes from `password_file`, never from the URL or the config; TLS follows `sslmode`
 * in the URL.
 * Every session is asked for `synchronous_commit = on`, so a COMMIT returns only once it is
 * flushed to disk, whatever the server's default (the 250 after DATA depends on it).
 */
import { readNamedTextFile } from "../../named_file.ts";
import { errorText } from "../../errors.ts";
import postgres from "postgres";
import { PG_CALL_DEADLINE_MS, within } from "./_deadline.ts";

/** A connection pool (npm:postgres). */
export type Sql = postgres.Sql;
/** The handle of one transaction. */
export type Tx = postgres.TransactionSql;

/** Where and how to connect. */
export interface PgConnectOptions {
  readonly url: string;
  readonly passwordFile?: string | undefined;
  /** Connections in the pool (default 8). */
  readonly max?: number;
  /** Seconds to wait for a connection (default 10). */
  readonly connectTimeoutSeconds?: number;
  /** Shown in pg_stat_activity. */
  readonly applicationName?: string;
  /**
   * "off" only for writes that nobody waits on and that a later synchronous COMMIT makes
   * durable anyway (WAL is flushed in order: that COMMIT flushes every earlier record).
   */
  readonly synchronousCommit?: "on" | "off";
  /**
   * The session's `statement_timeout` in ms (none by default): the server ends a statement
   * running longer with 57014 (pools of deadline-bound calls, _deadline.ts).
   */
  readonly statementTimeoutMs?: number;
  /**
   * How long the check that the database answers may wait once `connectTimeoutSeconds` is
   * over (default PG_CALL_DEADLINE_MS; so 20 s in all by default): `connect_timeout` ends only
   * the handshake, and a server silent after it (a route gone silent, a pooler waiting for a
   * server) held serve's start and every command for good. Counted on top of the connect
   * timeout, so that an unreachable server fails as one (not as "first query: no answer"),
   * and a slow handshake on a loaded machine is not cut by a short call deadline.
   */
  readonly answerWithinMs?: number;
  /**
   * No idle or lifetime close, and the server's TCP keepalives short (a dead client's session
   * ends within about a minute, not the system's two hours): a session that must last and that
   * must end with its client (node_lock.ts holds a lock on it).
   */
  readonly keepOpen?: boolean;
}

/** The server's TCP keepalives of a `keepOpen` session: idle 30 s, then 3 probes 10 s apart. */
const SHORT_KEEPALIVES = {
  "tcp_keepalives_idle": 30,
  "tcp_keepalives_interval": 10,
  "tcp_keepalives_count": 3,
};

/** What PostgreSQL keeps of an application_name (NAMEDATALEN - 1 bytes). */
const APPLICATION_NAME_BYTES = 63;

/**
 * `name suffix` within what PostgreSQL keeps: `name` is cut (whole characters) so that the
 * suffix, which tells a node's pools apart in pg_stat_activity, stays.
 */
export function poolName(name: string, suffix: string): string {
  const room = APPLICATION_NAME_BYTES - new TextEncoder().encode(` ${suffix}`).length;
  let base = name;
  while (new TextEncoder().encode(base).length > room) base = [...base].slice(0, -1).join("");
  return `${base} ${suffix}`;
}

/** `postgres://user@host:5432/db`: the URL as logged (no password, no query). */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.username === "" ? "" : `${u.username}@`}${u.host}${u.pathname}`;
  } catch {
    return "(invalid URL)";
  }
}

/**
 * Opens a pool and checks that the database answers (within the connect timeout, then
 * `answerWithinMs`). Throws one Error line naming the database (never the password) when it
 * cannot be reached, does not answer in time, or the password file is unreadable.
 */
export async function connectPostgres(opts: PgConnectOptions): Promise<Sql> {
  let password: string | undefined;
  if (opts.passwordFile !== undefined) {
    try {
      password = (await readNamedTextFile(opts.passwordFile)).split(/\r?\n/)[0] ?? "";
    } catch (err) {
      throw new Error(
        `Cannot read queue.postgres.password_file "${opts.passwordFile}": ${describe(err)}`,
      );
    }
  }
  const query = new URL(opts.url).searchParams;
  const hasTlsChoice = query.has("sslmode") || query.has("ssl") || query.has("sslrootcert");
  const secret = password ?? "";
  // Settings npm:postgres reads but does not declare in its types.
  const undeclared: Record<string, unknown> = {
    "max_pipeline": 100,
    sslnegotiation: null,
    "target_session_attrs": null,
  };
  const connectSeconds = opts.connectTimeoutSeconds ?? 10;
  const sql = postgres(opts.url, {
    ...undeclared,
    // Every setting given here is one that npm:postgres does not look up in a PG* environment
    // variable (which Deno would have to be allowed to read): only PGAPPNAME and
    // PGTARGETSESSIONATTRS remain (README "Permissions").
    max: opts.max ?? 8,
    connect_timeout: connectSeconds,
    idle_timeout: opts.keepOpen === true ? 0 : 60,
    max_lifetime: opts.keepOpen === true ? 0 : 30 * 60,
    keep_alive: 60,
    prepare: true,
    debug: false,
    fetch_types: true,
    publications: "alltables",
    backoff: (attempt: number) => Math.min(0.1 * 2 ** attempt, 5),
    ...(hasTlsChoice ? {} : { ssl: false }),
    onnotice: () => {},
    // A function, so that an empty password never falls back to $PGPASSWORD.
    pass: () => secret,
    connection: {
      application_name: opts.applicationName ?? "odmr-relay",
      synchronous_commit: opts.synchronousCommit ?? "on",
      ...(opts.keepOpen === true ? SHORT_KEEPALIVES : {}),
      ...(opts.statementTimeoutMs === undefined
        ? {}
        : { statement_timeout: opts.statementTimeoutMs }),
    },
  });
  try {
    await within(
      sql`SELECT 1 AS one`,
      connectSeconds * 1000 + (opts.answerWithinMs ?? PG_CALL_DEADLINE_MS),
      "first query",
    );
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {});
    throw new Error(
      `Cannot connect to PostgreSQL "${describeUrl(opts.url)}": ${describe(err, password)}`,
    );
  }
  return sql;
}

/** An error's text, with the password cut out should a server or library ever echo it. */
export function describe(err: unknown, password?: string): string {
  const text = errorText(err);
  return password === undefined || password === "" ? text : text.replaceAll(password, "***");
}
