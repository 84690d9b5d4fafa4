/**
 * `check-config` on a SQLite config whose data_dir `queue migrate` marked as copied to
 * PostgreSQL (schema step 12, `queue_moved`): `serve` refuses that config with exit 2, so
 * check-config says so too, with serve's line, instead of calling it valid (exit 0). A config
 * for PostgreSQL on the same data_dir, and a data_dir with no queue yet, are fine (and the
 * check creates nothing). The real process.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { runMain } from "../_helpers/server_process.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { markMoved } from "../../src/queue/moved_mark.ts";

Deno.test("check-config refuses a SQLite config on a data_dir queue migrate marked, exit 2 like serve", async () => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-cc-moved-" });
  try {
    const dataDir = `${dir}/data`;
    const db = openDatabase(dataDir);
    const store = new SqliteQueueStore(db);
    markMoved(db, Date.parse("2026-11-29T12:00:00Z"));
    await store.close();
    const files = async () =>
      (await Array.fromAsync(Deno.readDir(dataDir))).map((e) => e.name).sort();
    const before = await files();
    await Deno.writeTextFile(`${dir}/sqlite.yaml`, "data_dir: ./data\n");
    const refused = await runMain(["check-config", "--config", `${dir}/sqlite.yaml`]);
    assertEquals(refused.code, 2, refused.stderr);
    const lines = refused.stderr.trimEnd().split("\n");
    assertEquals(lines.length, 1, refused.stderr);
    match(lines[0] ?? "", /^error: .*queue migrate copied data_dir ".*" to PostgreSQL/);
    match(lines[0] ?? "", /queue migrate --clear-mark/);
    // No -wal or -shm left beside odmr.db (made by root under sudo, they lock serve out).
    assertEquals(await files(), before);

    await Deno.writeTextFile(
      `${dir}/pg.yaml`,
      "data_dir: ./data\nqueue:\n  backend: postgres\n  postgres:\n    url: postgres://odmr@db.test/odmr\n",
    );
    const pg = await runMain(["check-config", "--config", `${dir}/pg.yaml`]);
    assertEquals(pg.code, 0, pg.stderr);

    await Deno.writeTextFile(`${dir}/fresh.yaml`, "data_dir: ./fresh\n");
    const fresh = await runMain(["check-config", "--config", `${dir}/fresh.yaml`]);
    assertEquals(fresh.code, 0, fresh.stderr);
    assertEquals(await Deno.stat(`${dir}/fresh`).then(() => true, () => false), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
