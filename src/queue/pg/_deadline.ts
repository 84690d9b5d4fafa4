/**
 * Deadlines for the PostgreSQL calls an ODMR session waits on outside the group commit
 * (`_group.ts` has its own): an ATRN claim, the drain's reads, a lease's renewal and release.
 * A connection that stays established but silent (a server stuck mid-shutdown, a dead route
 * whose far end still acknowledges) is not seen by TCP keepalive while the peer's kernel
 * answers, so without a deadline the customer behind it waited indefinitely. Past the
 * deadline the call fails like a lost connection: the ATRN is answered 451 4.3.0 (the customer
 * tries again), a drain ends with what it delivered settled and the rest still queued.
 */
import type { Sql, Tx } from "./connect.ts";

/**
 * How long an ATRN claim, one drain read, a renewal or a release may wait for PostgreSQL: the
 * order of the group commit's GROUP_DEADLINE_MS (10 s), far above a healthy answer (ms) and
 * below the customer's own command timeout, so the customer hears 451 rather than nothing.
 */
export const PG_CALL_DEADLINE_MS = 10_000;

/** A PostgreSQL call that did not answer within its deadline. */
export class PgDeadlineError extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: no answer from PostgreSQL within ${ms} ms (connection silent?)`);
    this.name = "PgDeadlineError";
  }
}

/**
 * How long a statement cancelled at its deadline has to answer before its connection is
 * dropped: the CancelRequest goes over a connection of its own, and a healthy server answers
 * the cancelled statement with an error within milliseconds.
 */
export const CANCEL_GRACE_MS = 1_000;

/**
 * `call`'s result, or PgDeadlineError once `ms` passed. When `call` is a postgres.js query,
 * it is cancelled at the deadline (a PostgreSQL CancelRequest): the server ends the statement,
 * and the connection goes on with the queries other callers pipelined behind it (dropped at
 * once, it failed them all, though the server may still have run them: an outbound claim
 * committed its lease while its caller was told it failed). Only a connection that has not
 * answered within CANCEL_GRACE_MS is dropped (vendor/postgres `destroy()`): left in the pool,
 * a silent connection kept every later query sent on it waiting too, and the pool never
 * opened a fresh one. The late outcome is dropped, a late rejection included.
 */
export function within<T>(call: PromiseLike<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = Promise.resolve(call);
  settled.catch(() => {});
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new PgDeadlineError(what, ms));
      cancelOrDrop(call, settled);
    }, ms);
  });
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}

/** What `within` uses of a postgres.js query (vendor/postgres query.js, connection.js). */
interface LateQuery {
  cancel?: () => unknown;
  connection?: { destroy?: () => void };
}

/**
 * Cancels a late query; drops its connection if the query is still unanswered CANCEL_GRACE_MS
 * later. A query not sent yet is taken off the pool's queue by `cancel()` (nothing to drop).
 */
function cancelOrDrop(call: unknown, settled: Promise<unknown>): void {
  const query = call as LateQuery | null;
  if (typeof query?.cancel !== "function") return; // not a query: nothing of ours to stop
  try {
    Promise.resolve(query.cancel()).catch(() => {});
  } catch {
    // A failed CancelRequest leaves the grace to decide.
  }
  const grace = setTimeout(() => query.connection?.destroy?.(), CANCEL_GRACE_MS);
  settled.then(() => clearTimeout(grace), () => clearTimeout(grace));
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
  // postgres.js's type unwraps arrays of results; `body` returns one value (cast back).
  const run = sql.begin(async (tx) => {
    if (isLate) throw new PgDeadlineError(what, ms);
    current = tx;
    // Sent now (postgres.js sends a query when asked for its result, or `execute`d): ahead
    // of the body's first statement, pipelined with it.
    const bounded = tx`SELECT set_config('lock_timeout', ${`${ms}ms`}, true),
      set_config('idle_in_transaction_session_timeout', ${`${ms}ms`}, true)`.execute();
    const all = Promise.all([bounded, body(tx)]);
    return (await Promise.race([all, cutShort]))[1];
  }) as Promise<T>;
  return within(run, ms, what).catch((err) => {
    if (!(err instanceof PgDeadlineError)) throw err;
    isLate = true;
    // Its connection is dropped: a ROLLBACK sent on a silent one would never be answered.
    current?.destroyConnection();
    cut(err);
    undo();
    // Also when it fails late: its COMMIT may have reached the server before the drop.
    run.then(undo, undo);
    throw err;
  });
}
