/**
 * Two nodes on one database of the test's PostgreSQL cluster for the expiry-race tests: `old`,
 * whose clock is `ageMs` behind (the mail it queues is that old), and `node`, on today's clock
 * (the other node: its claims, drains and reports), on the database at `url`; a pool `sql` for a maintenance pass built
 * by hand (`pass`, with its own view of the leases and optionally its own reader) and a
 * connection `raw` for the test's own reads. All are closed afterwards.
 */
import postgres from "postgres";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { newQueueId } from "../../src/queue/id.ts";
import type { LeasedDomains } from "../../src/queue/_rows.ts";
import { connectPostgres, type Sql } from "../../src/queue/pg/connect.ts";
import { PG_LONG_DEADLINE_MS } from "../../src/queue/pg/_deadline.ts";
import { PgMaintenance } from "../../src/queue/pg/_maintenance.ts";
import { PgReader } from "../../src/queue/pg/_reader.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { type PostgresCluster, postgresTest } from "../_helpers/postgres.ts";

/** What `withExpiryNodes` hands the test. */
export interface ExpiryNodes {
  readonly url: string;
  readonly old: PgQueueStore;
  readonly node: PgQueueStore;
  readonly sql: Sql;
  readonly raw: postgres.Sql;
  /** A pass on `sql` that reads the leases with `leasedDomains`, the messages with `reader`. */
  pass(leasedDomains: () => Promise<LeasedDomains>, reader?: PgReader): PgMaintenance;
}

/**
 * Registers a PostgreSQL test (tests/_helpers/postgres.ts) that creates the database `db`, opens
 * the nodes and connections, runs `fn`, and closes them all.
 */
export async function expiryNodesTest(
  name: string,
  db: string,
  ageMs: number,
  fn: (nodes: ExpiryNodes) => Promise<void>,
): Promise<void> {
  await postgresTest(name, async (pg) => await withExpiryNodes(pg, db, ageMs, fn));
}

async function withExpiryNodes(
  pg: PostgresCluster,
  db: string,
  ageMs: number,
  fn: (nodes: ExpiryNodes) => Promise<void>,
): Promise<void> {
  const url = await pg.createDatabase(db);
  const old = await PgQueueStore.open({ url }, { nodeId: "node-a", now: () => Date.now() - ageMs });
  const node = await PgQueueStore.open({ url }, { nodeId: "node-b" });
  const sql = await connectPostgres({ url });
  const raw = postgres(url, { max: 1, onnotice: () => {} });
  const pass = (leasedDomains: () => Promise<LeasedDomains>, reader?: PgReader) =>
    new PgMaintenance({
      sql,
      reader: reader ?? new PgReader(sql, NULL_LOGGER),
      log: NULL_LOGGER,
      now: Date.now,
      newId: () => newQueueId(Date.now()),
      chunkBytes: 64 * 1024,
      leasedDomains,
      deadlineMs: PG_LONG_DEADLINE_MS,
    });
  try {
    await fn({ url, old, node, sql, raw, pass });
  } finally {
    await raw.end({ timeout: 1 });
    await sql.end({ timeout: 1 });
    await node.close();
    await old.close();
  }
}

/** A pass's reader that runs `before` once, the first time the pass reads a body (after the marks). */
export class ReaderWithHook extends PgReader {
  #before: (() => Promise<void>) | undefined;

  constructor(sql: Sql, before: () => Promise<void>) {
    super(sql, NULL_LOGGER);
    this.#before = before;
  }

  override async *body(messageId: string): AsyncGenerator<Uint8Array> {
    const before = this.#before;
    this.#before = undefined;
    await before?.();
    yield* super.body(messageId);
  }
}
