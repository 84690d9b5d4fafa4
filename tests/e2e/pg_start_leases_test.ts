/**
 * serve's start drops the leases its node's previous process left (`releaseAllLeases`, after
 * binding its ports). When that fails, serve fails like at any other start-up failure: one
 * `startup_failed` line saying why, exit 1, no stack trace, no `ready`. Before, the error escaped
 * serve's handling: exit 1 with an uncaught error and its stack, and no startup_failed line.
 * The database refuses the release here by a trigger (a failure that is not a timing).
 */
import assert from "node:assert/strict";
import { connectPostgres } from "../../src/queue/pg/connect.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { postgresNodeConfig } from "../_helpers/postgres_nodes.ts";
import { removeTestFiles, runMain, writeTestConfig } from "../_helpers/server_process.ts";

await postgresTest(
  "serve exits 1 with one startup_failed line when releasing its stale leases fails (#13)",
  async (pg) => {
    const url = await pg.createDatabase("start_leases");
    // The schema, then a trigger that refuses every DELETE on domain_leases.
    await (await PgQueueStore.open({ url }, { nodeId: "setup" })).close();
    const sql = await connectPostgres({ url, max: 1 });
    try {
      await sql.unsafe(`CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'leases kept by the test'; END $$`);
      await sql.unsafe(`CREATE TRIGGER refuse_delete BEFORE DELETE ON domain_leases
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_delete()`);
    } finally {
      await sql.end({ timeout: 5 });
    }
    const files = await writeTestConfig({ config: postgresNodeConfig("mx-a.test", url) });
    try {
      const r = await runMain(["serve", "--config", files.configPath]);
      const out = r.stdout + r.stderr;
      assert.equal(r.code, 1, out);
      const failures = out.split("\n").filter((l) => l.includes("startup_failed"));
      assert.equal(failures.length, 1, out);
      assert.match(
        failures[0] ?? "",
        /event=startup_failed reason="Cannot release this node's stale leases in PostgreSQL: .*leases kept by the test/,
      );
      assert.doesNotMatch(out, /event=ready|Uncaught|^\s+at /m);
    } finally {
      await removeTestFiles(files);
    }
  },
);
