/**
 * (session 18) `queue list`, `queue show` and `queue summary` on a full disk, with serve stopped:
 * the operator must see what waits before deciding what to delete. Before, each failed ("disk
 * I/O error"): even a reading connection must make the -shm file (SQLITE_IOERR_SHMSIZE). With no
 * WAL left (a clean stop), they now read the database file as it is, also with the README's
 * deno run permissions. Real CLI on a small tmpfs (root: skipped with the reason otherwise).
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { queueList, runMain } from "../_helpers/server_process.ts";
import { fillUp } from "../_helpers/tmpfs.ts";
import { onTmpfs, stoppedWithMail } from "./_disk_full.ts";
import { mapPaths, README_PATHS, readmeFlags } from "../_helpers/documented_flags.ts";
import { dirname } from "node:path";

const NAME = "disk full list";

Deno.test("disk full, serve stopped: queue list, show and summary still read the queue (session 18)", async () => {
  await onTmpfs(NAME, "64m", async ({ dir, start }) => {
    const { server, ids } = await stoppedWithMail(start, 3);
    fillUp(`${dir}/filler`);
    const listed = await queueList(server.configPath) as { id: string }[];
    assertEquals(listed.map((m) => m.id).sort(), [...ids].sort());
    const show = await runMain(["queue", "show", ids[0]!, "--config", server.configPath]);
    assertEquals(show.code, 0, show.stderr);
    assertMatch(show.stdout, /m0@example\.org/);
    const summary = await runMain(["queue", "summary", "--json", "--config", server.configPath]);
    assertEquals(summary.code, 0, summary.stderr);
    // Also with the README's deno run permissions, which grant data_dir but cannot name the
    // `file:…?immutable=1` URI of that read.
    const flags = mapPaths(await readmeFlags("serve"), {
      [README_PATHS.config]: dirname(server.configPath),
      [README_PATHS.data]: server.dataDir,
    });
    const scoped = await runMain(["queue", "list", "--json", "--config", server.configPath], {
      denoFlags: flags,
    });
    assertEquals(scoped.code, 0, `${flags.join(" ")}: ${scoped.stderr}`);
    assertEquals(JSON.parse(scoped.stdout), listed);
  });
});
