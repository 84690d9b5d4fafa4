/**
 * (note 19) A read-only command (`queue list`) on a data_dir a crash left with a non-empty
 * `odmr.db-wal` and no `odmr.db-shm` beside it (a tmpfs /run, a backup copied while serve ran, a
 * removed -shm), where it cannot write (a full disk, or no write grant): it reads the committed
 * data, WAL included (src/queue/wal_image.ts), and creates nothing. Before, only a data_dir
 * without a WAL could be read so; this one failed ("Cannot open queue database"). The crash image
 * is real: a process that queued through the store, killed with SIGKILL right after its commits.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { REPO_ROOT, runMain } from "../_helpers/server_process.ts";

/** Queues three messages in `Deno.args[0]`, writes their ids to `Deno.args[1]`, dies by SIGKILL. */
const CRASHING_WRITER = `
import { openDatabase } from "${REPO_ROOT}src/queue/db.ts";
import { SqliteQueueStore } from "${REPO_ROOT}src/queue/sqlite_store.ts";
import { queueMessage } from "${REPO_ROOT}tests/_helpers/queue_fixtures.ts";
const db = openDatabase(Deno.args[0]);
const store = new SqliteQueueStore(db);
// The schema goes into the database file; the messages are only in the WAL.
db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
const ids = [];
for (let i = 0; i < 3; i++) {
  ids.push(await queueMessage(store, { from: "a@b.test", to: ["u" + i + "@example.org"] }));
}
Deno.writeTextFileSync(Deno.args[1], JSON.stringify(ids));
Deno.kill(Deno.pid, "SIGKILL");
`;

Deno.test("queue list without write access reads a crash's WAL that has no -shm beside it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-wal-no-shm-" });
  try {
    const dataDir = `${dir}/data`;
    await Deno.writeTextFile(`${dir}/writer.ts`, CRASHING_WRITER);
    const crashed = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${dir}/writer.ts`, dataDir, `${dir}/ids.json`],
      stdout: "null",
      stderr: "piped",
    }).output();
    assertEquals(crashed.signal, "SIGKILL", new TextDecoder().decode(crashed.stderr));
    const ids: string[] = JSON.parse(await Deno.readTextFile(`${dir}/ids.json`));
    assertEquals(ids.length, 3);
    assertEquals((await Deno.stat(`${dataDir}/odmr.db-wal`)).size > 0, true);
    await Deno.remove(`${dataDir}/odmr.db-shm`);
    // The database file alone holds none of them.
    await Deno.mkdir(`${dir}/alone`);
    await Deno.copyFile(`${dataDir}/odmr.db`, `${dir}/alone/odmr.db`);
    const alone = new DatabaseSync(`${dir}/alone/odmr.db`, { readOnly: true });
    assertEquals({ ...alone.prepare("SELECT count(*) AS n FROM messages").get() }, { n: 0 });
    alone.close();

    const files = async () =>
      (await Array.fromAsync(Deno.readDir(dataDir))).map((e) => e.name).sort();
    const before = await files();
    const walBefore = await Deno.readFile(`${dataDir}/odmr.db-wal`);
    await Deno.writeTextFile(`${dir}/c.yaml`, `data_dir: ${dataDir}\n`);
    const listed = await runMain(["queue", "list", "--json", "--config", `${dir}/c.yaml`], {
      denoFlags: ["--allow-read", "--allow-env", "--allow-sys"],
      signal: AbortSignal.timeout(60_000),
    });
    assertEquals(listed.code, 0, listed.stderr);
    const rows: { id: string; recipients: { address: string }[] }[] = JSON.parse(listed.stdout);
    assertEquals(rows.map((m) => m.id).sort(), [...ids].sort());
    assertEquals(
      rows.flatMap((m) => m.recipients.map((r) => r.address)).sort(),
      ["u0@example.org", "u1@example.org", "u2@example.org"],
    );
    // Nothing made or changed beside it.
    assertEquals(await files(), before);
    assertEquals(await Deno.readFile(`${dataDir}/odmr.db-wal`), walBefore);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
