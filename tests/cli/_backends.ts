/**
 * Runs one set of command test cases on both backends, like the store's contract suite
 * (tests/queue/contract_test.ts): SQLite in a temp data_dir, and PostgreSQL (a private cluster,
 * a fresh database per case, a temp data_dir beside it holding nothing of the queue). The
 * same assertions must hold on both.
 */
import { type PostgresCluster, postgresTest } from "../_helpers/postgres.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import type { QueueTarget } from "./_io.ts";

/** Gives a case a fresh, empty target; removes it afterwards. */
export type TargetOpener = (fn: (target: QueueTarget) => Promise<void>) => Promise<void>;

/** Registers `cases` twice: "NAME: SQLite" and "NAME: PostgreSQL". */
export async function onBothBackends(
  name: string,
  cases: (t: Deno.TestContext, open: TargetOpener) => Promise<void>,
): Promise<void> {
  Deno.test(`${name}: SQLite`, (t) =>
    cases(t, (fn) => withTempDataDir((dataDir) => fn({ dataDir }))));
  await postgresTest(`${name}: PostgreSQL`, (pg, t) => cases(t, pgOpener(pg, name)));
}

let databases = 0;

function pgOpener(pg: PostgresCluster, name: string): TargetOpener {
  const prefix = name.toLowerCase().replace(/[^a-z0-9]+/g, "_").slice(0, 30);
  return async (fn) => {
    const url = await pg.createDatabase(`${prefix}_${++databases}`);
    await withTempDataDir((dataDir) =>
      fn({
        dataDir,
        storage: { backend: "postgres", postgres: { url, passwordFile: undefined } },
      })
    );
  };
}
