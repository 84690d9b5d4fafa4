/**
 * The QueueStore contract, one suite run against both backends: SQLite (a temp data_dir) and
 * PostgreSQL (a private cluster, a fresh database per case). What sessions, the drain,
 * maintenance and the commands rely on, whatever the backend; its parts by topic: the writes
 * (_store_contract.ts), the leases (_lease_contract.ts), the operator's view and maintenance
 * (_admin_contract.ts), outbound (_outbound_contract.ts, _outbound_maintenance_contract.ts) and
 * the failure reports owed (_report_pending_contract.ts), mail held for a new owner's ATRN
 * (_hold_contract.ts).
 */
import { openDatabase } from "../../src/queue/db.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { type PostgresCluster, postgresTest } from "../_helpers/postgres.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { adminContract } from "./_admin_contract.ts";
import { holdContract } from "./_hold_contract.ts";
import { leaseContract } from "./_lease_contract.ts";
import { type Clock, outboundContract, type OutboundOpener, T0 } from "./_outbound_contract.ts";
import { outboundMaintenanceContract } from "./_outbound_maintenance_contract.ts";
import { reportPendingContract } from "./_report_pending_contract.ts";
import { type Opener, writesContract } from "./_store_contract.ts";

/** The core cases. */
async function contract(t: Deno.TestContext, open: Opener): Promise<void> {
  await writesContract(t, open);
  await leaseContract(t, open);
  await adminContract(t, open);
}

/** SQLite stores in a temp data_dir; a restart closes the store and opens the same file. */
const sqliteOpener: OutboundOpener = async (fn) => {
  const clock = { ms: T0 };
  await withTempDataDir(async (dataDir) => {
    const openOne = () => new SqliteQueueStore(openDatabase(dataDir), { now: () => clock.ms });
    let store = openOne();
    try {
      await fn(store, clock, async () => {
        await store.close();
        store = openOne();
        return store;
      });
    } finally {
      await store.close();
    }
  });
};

Deno.test("QueueStore contract: SQLite", async (t) => {
  await contract(t, async (fn) => {
    const clock = { ms: T0 };
    await withTempDataDir(async (dataDir) => {
      let commits = 0;
      const store = new SqliteQueueStore(openDatabase(dataDir), {
        now: () => clock.ms,
        onGroupCommit: () => commits++,
      });
      try {
        await fn(store, clock, () => commits);
      } finally {
        await store.close();
      }
    });
  });
  await outboundContract(t, sqliteOpener);
  await outboundMaintenanceContract(t, sqliteOpener);
  await reportPendingContract(t, sqliteOpener);
  await holdContract(t, sqliteOpener);
});

let databases = 0;

/** Opens a PgQueueStore on a fresh database of `pg`. */
export async function openPgStore(
  pg: PostgresCluster,
  clock: Clock,
  opts: { nodeId?: string; onGroupCommit?: () => void } = {},
): Promise<PgQueueStore> {
  const url = await pg.createDatabase(`contract_${++databases}`);
  return await PgQueueStore.open({ url }, {
    nodeId: opts.nodeId ?? "node-a",
    now: () => clock.ms,
    // Lease expiry is stepped by the millisecond here: leases on this clock, not the database's.
    leaseClock: () => clock.ms,
    ...(opts.onGroupCommit === undefined ? {} : { onGroupCommit: opts.onGroupCommit }),
  });
}

await postgresTest("QueueStore contract: PostgreSQL", async (pg, t) => {
  await contract(t, async (fn) => {
    const clock = { ms: T0 };
    let commits = 0;
    const store = await openPgStore(pg, clock, { onGroupCommit: () => commits++ });
    try {
      await fn(store, clock, () => commits);
    } finally {
      await store.close();
    }
  });
  // A restart: the same database, a new store of the same node.
  const pgOpener: OutboundOpener = async (fn) => {
    const clock = { ms: T0 };
    const url = await pg.createDatabase(`contract_${++databases}`);
    const openOne = () =>
      PgQueueStore.open({ url }, {
        nodeId: "node-a",
        now: () => clock.ms,
        leaseClock: () => clock.ms,
      });
    let store = await openOne();
    try {
      await fn(store, clock, async () => {
        await store.close();
        store = await openOne();
        return store;
      });
    } finally {
      await store.close();
    }
  };
  await outboundContract(t, pgOpener);
  await outboundMaintenanceContract(t, pgOpener);
  await reportPendingContract(t, pgOpener);
  await holdContract(t, pgOpener);
});
