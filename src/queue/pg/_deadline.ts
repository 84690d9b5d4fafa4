/**
 * Deadlines for the PostgreSQL calls an ODMR session waits on outside the group commit
 * (`_group.ts` has its own): an ATRN claim, the drain's reads, a lease's renewal and release;
 * and every other call of serve and the commands on the same pools (the health check, the
 * users' tables, the shared key, DKIM key reads, body chunks).
 * A connection that stays established but silent (a server stuck mid-shutdown, a dead route
 * whose far end still acknowledges) is not seen by TCP keepalive while the peer's kernel
 * answers, so without a deadline the customer behind it waited indefinitely. Past the
 * deadline the call fails like a lost connection: the ATRN is answered 451 4.3.0 (the customer
 * tries again), a drain ends with what it delivered settled and the rest still queued. The
 * server bounds the same calls itself (`statementTimeoutFor`): the client never cancels one.
 */
import { setImmediate } from "node:timers";
import type { Sql, Tx } from "./connect.ts";

/**
 * How long an ATRN claim, one drain read, a renewal or a release may wait for PostgreSQL: the
 * order of the group commit's GROUP_DEADLINE_MS (10 s), far above a healthy answer (ms) and
 * below the customer's own command timeout, so the customer hears 451 rather than nothing.
 */
export const PG_CALL_DEADLINE_MS = 10_000;

/**
 * How long a transaction on the pool for what may take long may wait: maintenance, `queue
 * delete` (a whole domain) and `queue migrate`'s import of one message (its body up to the size
 * limit). Far above what they take on a healthy server; without it, a connection gone silent held
 * the command (and migrate's data_dir lock) for good. That pool's `statement_timeout` is
 * `statementTimeoutFor` it (store.ts).
 */
export const PG_LONG_DEADLINE_MS = 300_000;

/** A PostgreSQL call that did not answer within its deadline. */
export class PgDeadlineError extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: no answer from PostgreSQL within ${ms} ms (connection silent?)`);
    this.name = "PgDeadlineError";
  }
}

/**
 * The `statement_timeout` of the pool the deadline-bound calls go out on (store.ts): a little
 * below their deadline, so that PostgreSQL itself ends a statement that would miss it (a lock
 * wait, a slow plan) with 57014, answered in its own place on the connection. The client never
 * sends a CancelRequest: one sent for a query still pipelined behind another made postgres.js
 * drop it from its queue while the server still ran it, so every later query on that
 * connection was handed the answer of the one before (one customer's drain read another's
 * message body); one arriving as the late statement had just ended cancelled the next caller's.
 */
export function statementTimeoutFor(deadlineMs: number): number {
  return Math.max(1, deadlineMs - Math.min(500, Math.floor(deadlineMs / 10)));
}

/** True for a statement the server ended by its `statement_timeout` (SQLSTATE 57014). */
export function isStatementTimeout(err: unknown): boolean {
  return err instanceof Error && err.name === "PostgresError" &&
    (err as { code?: unknown }).code === "57014";
}

/**
 * How much longer than any statement may run a connection past a call's deadline may stay
 * silent before it is dropped: on a healthy server a statement ends by its
 * `statement_timeout` (above), below the call's deadline, so a busy connection receives
 * something at least that often.
 */
export const SILENCE_GRACE_MS = 1_000;

/** What `within` needs of vendor/postgres's connection a query went out on. */
interface PgConnection {
  destroy(): void;
  /** Milliseconds since it last received bytes, or was sent a query while idle. */
  quietFor(): number;
}

/**
 * `call`'s result, or PgDeadlineError once `ms` passed. The late query stays in its place on
 * its connection (its answer, when it comes, is dropped, a late rejection included), so the
 * queries other callers pipelined behind it still get their own answers. Its connection is
 * dropped (vendor/postgres `destroy()`) only once silent (`dropWhenSilent`): left in the pool,
 * a silent connection kept every later query sent on it waiting, and the pool never opened a
 * fresh one. The queries pipelined on it then fail with CONNECTION_CLOSED (retryable; the
 * server may have run them: see the outbound claim's take-back, _outbound.ts).
 *
 * A call still waiting in the pool for a connection (every one reserved by a transaction,
 * opening, or its pipeline full) fails at the deadline all the same; its query goes out once
 * a connection frees, and that connection is watched from then on (vendor/postgres `onsent`).
 * `silentMs` (default `ms`) is the longest a statement may run on the call's pool: a call whose
 * deadline is shorter than that (the health check's) drops a connection only past it.
 */
export function within<T>(
  call: PromiseLike<T>,
  ms: number,
  what: string,
  silentMs: number = ms,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = Promise.resolve(call);
  settled.catch(() => {});
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new PgDeadlineError(what, ms));
      const query = call as { connection?: unknown; onsent?: unknown } | null;
      if (query?.connection !== undefined) dropWhenSilent(query.connection, settled, silentMs);
      else if (query !== null) {
        query.onsent = (conn: unknown) => dropWhenSilent(conn, settled, silentMs);
      }
    }, ms);
  });
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}

/**
 * Drops `conn`, a vendor/postgres connection a late query went out on (connection.js sets
 * `query.connection`; a BEGIN's is handed to `onbegin`), once it has received nothing for
 * `ms` + SILENCE_GRACE_MS while `settled` is pending; `ms` is at least the longest a statement
 * may run on its pool (its `statement_timeout`). Not sooner: with queries pipelined ahead of
 * the late one, the server starts each only when the one before has ended (and answered), and
 * times each from then, so a healthy busy connection may take several deadlines to reach the
 * late query while it answers every statement; silence longer than a statement may run is the
 * only sign that it is not healthy (review N1: dropping at a fixed time past the deadline
 * failed the healthy connection's other queries). A query not sent yet has no connection:
 * `within` watches the one it goes out on later.
 */
export function dropWhenSilent(conn: unknown, settled: Promise<unknown>, ms: number): void {
  const c = conn as Partial<PgConnection> | null | undefined;
  if (typeof c?.destroy !== "function" || typeof c.quietFor !== "function") return;
  const connection = c as PgConnection;
  const bound = ms + SILENCE_GRACE_MS;
  let isSettled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = () => {
    if (isSettled) return;
    const quietMs = connection.quietFor();
    if (quietMs < bound) {
      timer = setTimeout(recheck, bound - quietMs);
      return;
    }
    connection.destroy();
  };
  // After the timer phase, the poll phase reads what is waiting in the sockets (an event loop
  // that was blocked runs its timers first): an answer that came is seen before judging.
  const recheck = () => void setImmediate(check);
  settled.then(() => isSettled = true, () => isSettled = true).finally(() => clearTimeout(timer));
  recheck();
}

/**
 * Runs `body` in a transaction that must answer within `ms`. At the deadline the caller gets
 * PgDeadlineError and the transaction rolls back unless its COMMIT was sent already: the body
 * is cut short and its connection dropped, which ends the transaction on the server (a ROLLBACK
 * sent on a silent connection would never be answered). The server is told the same bound: a
 * statement waiting for a lock gives up (`lock_timeout`), and a transaction whose client went
 * silent is ended with its locks (`idle_in_transaction_session_timeout`; without it a claim
 * stalled after its upsert kept the domain's row locked for as long as the server's TCP took
 * to notice). For a COMMIT that was sent, `undo` runs at the deadline (on another connection
 * of the pool) and again should the transaction report its commit later.
 */
export function transactionWithin<T>(
  sql: Sql,
  ms: number,
  what: string,
  body: (tx: Tx) => Promise<T>,
  undo: () => void,
): Promise<T> {
  let isLate = false;
  let current: Tx | undefined;
  let cut: (err: unknown) => void = () => {};
  const cutShort = new Promise<never>((_, reject) => cut = reject);
  cutShort.catch(() => {});
  /** The connection its BEGIN went out on (vendor/postgres `onbegin`). */
  let begun: unknown;
  // postgres.js's type unwraps arrays of results; `body` returns one value (cast back).
  const run = sql.begin(withOnBegin(async (tx) => {
    if (isLate) throw new PgDeadlineError(what, ms);
    current = tx;
    // Sent now (postgres.js sends a query when asked for its result, or `execute`d): ahead
    // of the body's first statement, pipelined with it.
    const bounded = tx`SELECT set_config('lock_timeout', ${`${ms}ms`}, true),
      set_config('idle_in_transaction_session_timeout', ${`${ms}ms`}, true)`.execute();
    const all = Promise.all([bounded, body(tx)]);
    return (await Promise.race([all, cutShort]))[1];
  }, (conn) => {
    begun = conn;
    // rev13b: a BEGIN sent only after the deadline (it waited for a connection) is watched too.
    if (isLate) dropWhenSilent(conn, run, ms);
  })) as Promise<T>;
  return within(run, ms, what).catch((err) => {
    if (!(err instanceof PgDeadlineError)) throw err;
    isLate = true;
    // Its connection is dropped: a ROLLBACK sent on a silent one would never be answered.
    // Still at BEGIN, possibly behind other callers' queries: dropped only once silent.
    if (current === undefined) dropWhenSilent(begun, run, ms);
    else current.destroyConnection();
    cut(err);
    undo();
    // Also when it fails late: its COMMIT may have reached the server before the drop.
    run.then(undo, undo);
    throw err;
  });
}

/**
 * `body` for `sql.begin`, telling `onBegin` the connection its BEGIN goes out on (vendor/postgres
 * index.js calls `fn.onbegin`): while BEGIN is unanswered the transaction has no handle yet, so
 * a BEGIN on a connection gone silent kept that connection reserved for good.
 */
export function withOnBegin<T>(
  body: (tx: Tx) => T,
  onBegin: (connection: unknown) => void,
): (tx: Tx) => T {
  return Object.assign((tx: Tx) => body(tx), { onbegin: onBegin });
}
