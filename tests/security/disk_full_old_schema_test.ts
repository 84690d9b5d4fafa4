/**
 * (session 19) An upgrade on a full disk: the data_dir's queue is one schema step behind the
 * program (serve stopped, the binary replaced). A read-only command (`queue list`, `show`,
 * `summary`) must not write the file: before, it applied the pending migration on its reading
 * connection and failed with "database or disk is full" (or on a read-only open, "attempt to
 * write a readonly database"). It now says which version the file is at and what to do, and
 * leaves the file as it was. The new serve then starts (its migration may use the space
 * reserve), and the read commands read the queue. Real CLI and `serve` on a small tmpfs (root:
 * skipped with the reason otherwise).
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { queueList, runMain } from "../_helpers/server_process.ts";
import { fillUp } from "../_helpers/tmpfs.ts";
import { QUEUE_MIGRATIONS } from "../../src/queue/_schema.ts";
import { onTmpfs, stoppedWithMail } from "./_disk_full.ts";

const NAME = "disk full old schema";
const CURRENT = QUEUE_MIGRATIONS.length;

/** The queue's schema_version, read without writing (immutable). */
function queueVersion(dbPath: string): number {
  const db = new DatabaseSync(`file:${dbPath}?immutable=1`, { readOnly: true });
  try {
    const row = db.prepare("SELECT version FROM schema_version WHERE component = 'queue'").get();
    return Number(row?.version);
  } finally {
    db.close();
  }
}

Deno.test("disk full, schema one step behind: read commands leave the file alone and say so; the new serve upgrades it (session 19)", async () => {
  await onTmpfs(NAME, "64m", async ({ dir, start }) => {
    const dbPath = `${dir}/data/odmr.db`;
    const stopped = await stoppedWithMail(start, 2);
    const ids = stopped.ids;
    let server = stopped.server;
    // The file as the previous version left it: its last step undone.
    const old = new DatabaseSync(dbPath);
    old.exec("ALTER TABLE messages DROP COLUMN submitter");
    old.exec(`UPDATE schema_version SET version = ${CURRENT - 1} WHERE component = 'queue'`);
    old.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    old.close();
    fillUp(`${dir}/filler`);

    const before = await Deno.readFile(dbPath);
    for (const args of [["list"], ["show", ids[0]!], ["summary"]]) {
      const r = await runMain(["queue", ...args, "--config", server.configPath]);
      assertEquals(r.code, 1, `${args[0]}: ${r.stdout}${r.stderr}`);
      assertMatch(
        r.stderr,
        new RegExp(
          `schema is version ${CURRENT - 1}.*this program reads version ${CURRENT}.*serve`,
        ),
        `${args[0]}: ${r.stderr}`,
      );
    }
    assertEquals(queueVersion(dbPath), CURRENT - 1);
    assertEquals(await Deno.readFile(dbPath), before, "a read command wrote the file");

    server = await start();
    const listed = await queueList(server.configPath) as { id: string }[];
    assertEquals(listed.map((m) => m.id).sort(), [...ids].sort());
    assertEquals(await server.stop(), 0, server.logs());
    assertEquals(queueVersion(dbPath), CURRENT);
  });
});
