/**
 * (session 19) serve's start on a full disk, when the DELETE of orphan chunk rows (a crash while
 * receiving) finds no room: the start goes on (`queue_orphans_kept`), but it also skipped
 * counting the bodies of each segment file and removing body files no row names. A segment it
 * has not counted is never removed, so every body file of the queue stayed on disk after its mail
 * was delivered, until the next start: on a full disk, the room the drains were to give back.
 * The count and the orphan files do not depend on the chunk rows, and now run anyway. Room on a
 * small tmpfs (root: skipped with the reason otherwise).
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { DATABASE_FILE, openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import {
  eventually,
  filledBodyFiles,
  maintenanceOptions,
  patternBytes,
  queueMessage,
  segmentOf,
} from "../_helpers/queue_fixtures.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";
import { fillUp, mountTmpfs, unmountTmpfs } from "../_helpers/tmpfs.ts";

const NAME = "orphans full disk";
const BIG = 100 * 1024;

Deno.test("a start whose orphan clean-up finds no room still counts its segments: they go once their mail is gone (session 19)", async () => {
  const dir = await mountTmpfs(NAME, "8m");
  if (dir === undefined) return;
  const dataDir = `${dir}/data`;
  let raw: DatabaseSync | undefined;
  let store: SqliteQueueStore | undefined;
  try {
    // The last run: two bodies in one segment, and chunk rows no message owns (its crash).
    store = new SqliteQueueStore(openDatabase(dataDir));
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      ids.push(await queueMessage(store, { to: [`u${i}@one.test`], body: patternBytes(BIG, i) }));
    }
    const segment = segmentOf(dataDir, ids[0]!);
    assert.equal(segmentOf(dataDir, ids[1]!), segment);
    await store.close();
    store = undefined;
    raw = new DatabaseSync(`${dataDir}/${DATABASE_FILE}`);
    raw.exec(
      "INSERT INTO message_chunks (message_id, seq, bytes) VALUES ('orphan', 0, randomblob(300000))",
    );
    // Kept open: the -shm file stays (the open needs no room), and the WAL is empty.
    raw.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    fillUp(`${dir}/filler`);

    const events: RecordedEvent[] = [];
    store = new SqliteQueueStore(openDatabase(dataDir), { logger: recordingLogger(events) });
    assert.deepEqual(
      events.filter((e) => e.event === "queue_orphans_kept").length,
      1,
      JSON.stringify(events),
    );
    await Deno.remove(`${dir}/filler`);
    assert.equal(await store.delete(ids), 2);
    await store.maintain(maintenanceOptions());
    assert.ok(
      await eventually(() => !filledBodyFiles(dataDir).includes(segment)),
      "the segment of delivered mail stays until the next start",
    );
  } finally {
    await store?.close();
    raw?.close();
    await unmountTmpfs(dir);
  }
});
