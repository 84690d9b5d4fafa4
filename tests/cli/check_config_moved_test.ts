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
import { markMoved, movedAt } from "../../src/queue/moved_mark.ts";
import { DatabaseSync } from "node:sqlite";

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

Deno.test("check-config sees a mark that is only in odmr.db-wal when no -shm is beside it, exit 2 like serve", async () => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-cc-moved-wal-" });
  try {
    // A data_dir copied (a backup, a move to a new disk) while its queue was open: odmr.db and
    // odmr.db-wal, no -shm. The mark of the migrate is still only in the WAL; serve replays the
    // WAL and refuses the queue, so check-config must see it too.
    const live = openDatabase(`${dir}/live`);
    const store = new SqliteQueueStore(live);
    live.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    markMoved(live, Date.parse("2026-11-29T12:00:00Z"));
    const dataDir = `${dir}/data`;
    await Deno.mkdir(dataDir);
    await Deno.copyFile(`${dir}/live/odmr.db`, `${dataDir}/odmr.db`);
    await Deno.copyFile(`${dir}/live/odmr.db-wal`, `${dataDir}/odmr.db-wal`);
    await store.close();
    // The database file alone has no mark: it is in the WAL only.
    await Deno.mkdir(`${dir}/main-only`);
    await Deno.copyFile(`${dataDir}/odmr.db`, `${dir}/main-only/odmr.db`);
    const mainOnly = new DatabaseSync(`${dir}/main-only/odmr.db`, { readOnly: true });
    assertEquals(movedAt(mainOnly), undefined);
    mainOnly.close();

    const files = async () =>
      (await Array.fromAsync(Deno.readDir(dataDir))).map((e) => e.name).sort();
    assertEquals(await files(), ["odmr.db", "odmr.db-wal"]);
    const walBefore = await Deno.readFile(`${dataDir}/odmr.db-wal`);
    await Deno.writeTextFile(`${dir}/sqlite.yaml`, "data_dir: ./data\n");
    const refused = await runMain(["check-config", "--config", `${dir}/sqlite.yaml`]);
    assertEquals(refused.code, 2, refused.stderr);
    match(
      refused.stderr,
      /^error: .*queue migrate copied data_dir ".*" to PostgreSQL \(2026-11-29T12:00:00\.000Z\)/,
    );
    // Read only: no -shm made beside it, the WAL as it was.
    assertEquals(await files(), ["odmr.db", "odmr.db-wal"]);
    assertEquals(await Deno.readFile(`${dataDir}/odmr.db-wal`), walBefore);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
