/**
 * "A PostgreSQL store with a short deadline on a private cluster", the setup of the deadline
 * tests (tests/queue/pg_call_deadline, pg_deadline_cancel, pg_statement_timeout,
 * pg_outbound_deadline): a fresh database, optionally reached through a proxy that can stall
 * or cut connections (tests/_helpers/postgres_proxy.ts), and a store whose calls (and, if
 * asked, commits) have a 500 ms deadline. Each step of such a test waits at most
 * STEP_BOUND_MS (`bounded`): a call that never answers fails the test instead of hanging it.
 */
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { type PostgresCluster, postgresTest } from "./postgres.ts";
import { type PostgresProxy, startPostgresProxy } from "./postgres_proxy.ts";
import { queueMessage } from "./queue_fixtures.ts";
import { answerWithin } from "./wait_until.ts";

/** The deadline of the store's calls: short, so that a test waits little for it. */
export const DEADLINE_MS = 500;
/** How long one step of a test may wait for an outcome. */
export const STEP_BOUND_MS = 5_000;

/** `p`'s outcome, or "no answer in 5000 ms" once STEP_BOUND_MS passed. */
export function bounded(p: Promise<string>): Promise<string> {
  return answerWithin(p, STEP_BOUND_MS);
}

/** `call`'s outcome, bounded (`bounded`); a failure as "failed: <message>". */
export function triedOnce(call: () => Promise<string>): Promise<string> {
  return bounded(call().catch((e) => `failed: ${e.message}`));
}

/**
 * `call` again until it answers, at most 8 times, each bounded (a sender, customer or worker
 * retrying): one asked before the silent connection was dropped goes out on it and fails too.
 * The tries' outcomes (" | "-joined), a failure as "failed: <message>".
 */
export async function untilAnswered(call: () => Promise<string>): Promise<string> {
  const tries: string[] = [];
  for (let i = 0; i < 8; i++) {
    const got = await triedOnce(call);
    tries.push(got);
    if (!got.startsWith("failed: ")) break;
  }
  return tries.join(" | ");
}

/** What a test gets. */
export interface ShortDeadline {
  readonly pg: PostgresCluster;
  /** The database's own URL (not through the proxy). */
  readonly url: string;
  readonly store: PgQueueStore;
  /** Set with `proxy: true`: the store reaches the database through it. */
  readonly proxy: PostgresProxy | undefined;
}

/** How the store is set up. */
export interface ShortDeadlineOptions {
  /** The database's name (fresh in the test's cluster). */
  readonly db: string;
  /** Through a proxy (`ShortDeadline.proxy`). */
  readonly proxy?: boolean;
  /** Connections of the store's main pool (default: the store's). */
  readonly max?: number;
  /** Group commits get the short deadline too. */
  readonly shortCommits?: boolean;
}

/** Registers a PostgreSQL test (tests/_helpers/postgres.ts) on a store with a short deadline. */
export function shortDeadlineTest(
  name: string,
  opts: ShortDeadlineOptions,
  fn: (t: ShortDeadline) => Promise<void>,
): Promise<void> {
  return postgresTest(name, (pg) => withShortDeadline(pg, opts, fn));
}

/**
 * Runs `fn` on a store with a short deadline on a fresh database of `pg` (several in one test
 * share its cluster), then closes the store and the proxy.
 */
export async function withShortDeadline(
  pg: PostgresCluster,
  opts: ShortDeadlineOptions,
  fn: (t: ShortDeadline) => Promise<void>,
): Promise<void> {
  const url = await pg.createDatabase(opts.db);
  const proxy = opts.proxy === true ? await startPostgresProxy(pg.port) : undefined;
  const store = await PgQueueStore.open({
    url: proxy === undefined ? url : proxy.via(url),
    ...(opts.max === undefined ? {} : { max: opts.max }),
  }, {
    nodeId: "n1",
    callDeadlineMs: DEADLINE_MS,
    ...(opts.shortCommits === true ? { commitDeadlineMs: DEADLINE_MS } : {}),
  }).catch(async (err) => {
    await proxy?.close();
    throw err;
  });
  try {
    await fn({ pg, url, store, proxy });
  } finally {
    // The stalled connections first: the pool's end would wait for their queries.
    await proxy?.close();
    await store.close();
  }
}

/** Queues a message from s@example.net to `to` in `t.store`: "queued" once it is committed. */
export function queueTo(t: ShortDeadline, to: string): Promise<string> {
  return queueMessage(t.store, { from: "s@example.net", to: [to] }).then(() => "queued");
}

/** An ATRN claim of example.org by `owner` in `t.store` (a 600 s lease): the result's kind. */
export function claimExampleOrg(t: ShortDeadline, owner: string): Promise<string> {
  return t.store.claim(["example.org"], { owner, leaseSeconds: 600 }).then((r) => r.kind);
}

/** `t.proxy`, which the test asked for. */
export function proxyOf(t: ShortDeadline): PostgresProxy {
  if (t.proxy === undefined) throw new Error("shortDeadlineTest without proxy: true");
  return t.proxy;
}
