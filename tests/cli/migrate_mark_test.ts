/**
 * After `queue migrate` copied a SQLite queue into PostgreSQL, the old data_dir still holds
 * every copied message: a SQLite `serve` started on it again would deliver them a second time.
 * It refuses instead, before binding a port: one `error:` line saying what to do, exit 2 (a
 * configuration error, CONTRACT). A serve configured for PostgreSQL on that data_dir starts;
 * `queue migrate --clear-mark` lets a SQLite serve use the old queue again.
 */
import assert from "node:assert/strict";
import { postgresNodeConfig } from "../_helpers/postgres_nodes.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";
import { runMain, startServer, writeTestConfig } from "../_helpers/server_process.ts";
import { inSqliteQueue, migrateTest } from "./_migrate.ts";

await migrateTest(
  "a SQLite serve on a data_dir queue migrate copied refuses (one error line, exit 2) until the mark is cleared",
  "migrate_mark",
  async ({ url, configPath, dataDir }) => {
    const sqlitePath = `${dataDir}.sqlite.yaml`;
    await writeTestConfig({ dataDir, configPath: sqlitePath, config: { hostname: "mx-a.test" } });
    try {
      const id = await inSqliteQueue(
        dataDir,
        (old) => queueMessage(old, { from: "s@sender.test", to: ["u@example.org"] }),
      );
      const run = await runMain(["queue", "migrate", "--config", configPath]);
      assert.equal(run.code, 0, run.stderr);
      // Bounded: a serve that starts is stopped (SIGTERM, exit 0) after a minute.
      const refused = await runMain(["serve", "--config", sqlitePath], {
        signal: AbortSignal.timeout(60_000),
      });
      assert.equal(refused.code, 2, refused.stdout + refused.stderr);
      const lines = refused.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, refused.stderr);
      assert.match(lines[0] ?? "", /^error: /);
      assert.match(lines[0] ?? "", /queue migrate copied data_dir ".*" to PostgreSQL/);
      assert.match(lines[0] ?? "", /queue\.backend: postgres/);
      assert.match(lines[0] ?? "", /queue migrate --clear-mark/);
      assert.doesNotMatch(refused.stdout + refused.stderr, /event=listening/);
      // Nothing of the old queue was touched: the message is still there.
      const listed = await runMain(["queue", "list", "--json", "--config", sqlitePath]);
      assert.deepEqual(JSON.parse(listed.stdout).map((m: { id: string }) => m.id), [id]);
      // The nodes' serve, configured for PostgreSQL, starts on the same data_dir.
      const node = await startServer({
        dataDir,
        configPath,
        config: postgresNodeConfig("mx-a.test", url),
      });
      assert.equal(await node.stop(), 0, node.logs());
      // The operator goes back to the SQLite queue on purpose.
      const cleared = await runMain(["queue", "migrate", "--clear-mark", "--config", sqlitePath]);
      assert.equal(cleared.code, 0, cleared.stderr);
      assert.match(cleared.stdout, /^Cleared the mark of queue migrate/);
      const again = await startServer({
        dataDir,
        configPath: sqlitePath,
        config: { hostname: "mx-a.test" },
      });
      assert.equal(await again.stop(), 0, again.logs());
    } finally {
      await Deno.remove(sqlitePath).catch(() => {});
    }
  },
);
