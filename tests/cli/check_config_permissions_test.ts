/**
 * `check-config` with exactly the README's `deno run` permissions for serve (read on the config
 * directory and data_dir, write on data_dir; paths mapped into a temp dir) on the data_dir of a
 * serve that stopped cleanly (odmr.db, no -wal): it reads the file for the mark `queue migrate`
 * leaves as it does under -A, and says the config is valid (exit 0) or refused (exit 2, serve's
 * line), never a permission error about a `file:` URI the grants cannot name. It still leaves
 * no -wal or -shm beside odmr.db.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { runMain } from "../_helpers/server_process.ts";
import { mapPaths, README_PATHS, readmeFlags } from "../_helpers/documented_flags.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { markMoved } from "../../src/queue/moved_mark.ts";

Deno.test("check-config with the README's serve permissions reads a stopped queue: exit 0, or 2 when marked", async () => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-cc-perm-" });
  try {
    const etc = `${dir}/etc`;
    const data = `${dir}/data`;
    await Deno.mkdir(etc);
    const db = openDatabase(data);
    const store = new SqliteQueueStore(db);
    await store.close();
    const files = async () => (await Array.fromAsync(Deno.readDir(data))).map((e) => e.name).sort();
    assertEquals((await files()).filter((f) => f.startsWith("odmr.db")), ["odmr.db"]);
    await Deno.writeTextFile(`${etc}/config.yaml`, `data_dir: ${data}\n`);
    const flags = mapPaths(await readmeFlags("serve"), {
      [README_PATHS.config]: etc,
      [README_PATHS.data]: data,
    });
    const check = () =>
      runMain(["check-config", "--config", `${etc}/config.yaml`], { denoFlags: flags });

    const before = await files();
    const valid = await check();
    assertEquals([valid.code, valid.stderr], [0, ""], flags.join(" "));
    assertEquals(await files(), before);

    const marking = openDatabase(data);
    markMoved(marking, Date.parse("2026-11-29T12:00:00Z"));
    marking.close();
    assertEquals(await files(), before);
    const refused = await check();
    assertEquals(refused.code, 2, refused.stderr);
    const lines = refused.stderr.trimEnd().split("\n");
    assertEquals(lines.length, 1, refused.stderr);
    match(lines[0] ?? "", /^error: .*queue migrate copied data_dir ".*" to PostgreSQL/);
    assertEquals(await files(), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
