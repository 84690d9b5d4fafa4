/**
 * (note 19) Big bodies (64 KiB or more, in `data_dir/bodies/`) of messages another process deleted
 * while serve runs (`queue delete`) give their room back at serve's next maintenance pass, not
 * only at its next start: that process notes each such body in `bodies_gone_elsewhere` inside the
 * transaction that deletes its row, and serve takes the notes off with its count of the segment's
 * bodies. A segment still holding a live body stays; a note made before serve's start (which
 * counts the rows anyway) is not taken twice. Two stores on one data_dir, as serve and the CLI.
 */
import assert from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import {
  eventually,
  filledBodyFiles,
  maintenanceOptions,
  patternBytes,
  queueMessage,
  segmentOf,
} from "../_helpers/queue_fixtures.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

const BIG = 100 * 1024;

Deno.test("a segment whose bodies queue delete removed while serve runs goes at serve's next pass", async () => {
  await withTempDataDir(async (dataDir) => {
    const serve = new SqliteQueueStore(openDatabase(dataDir));
    const cli = new SqliteQueueStore(openDatabase(dataDir), { removeOrphans: false });
    try {
      // Two bodies of one domain, one after the other: one segment.
      const first = await queueMessage(serve, { to: ["a@one.test"], body: patternBytes(BIG, 1) });
      const second = await queueMessage(serve, { to: ["b@one.test"], body: patternBytes(BIG, 2) });
      const segment = segmentOf(dataDir, first);
      assert.equal(segmentOf(dataDir, second), segment);

      assert.equal(await cli.delete([first]), 1);
      await serve.maintain(maintenanceOptions());
      assert.deepEqual(filledBodyFiles(dataDir), [segment], "the other body still lives there");
      assert.deepEqual(await collectBytes(serve.readBody(second)), patternBytes(BIG, 2));

      assert.equal(await cli.delete([second]), 1);
      await serve.maintain(maintenanceOptions());
      // Failed before: the segment stayed until serve's next start.
      assert.ok(
        await eventually(() => filledBodyFiles(dataDir).length === 0),
        `still there: ${filledBodyFiles(dataDir)}`,
      );
    } finally {
      await cli.close();
      await serve.close();
    }
  });
});

Deno.test("a body deleted elsewhere before serve's start is not counted off again", async () => {
  await withTempDataDir(async (dataDir) => {
    const before = new SqliteQueueStore(openDatabase(dataDir));
    const gone = await queueMessage(before, { to: ["a@one.test"], body: patternBytes(BIG, 1) });
    const kept = await queueMessage(before, { to: ["b@one.test"], body: patternBytes(BIG, 2) });
    const segment = segmentOf(dataDir, kept);
    const cli = new SqliteQueueStore(openDatabase(dataDir), { removeOrphans: false });
    assert.equal(await cli.delete([gone]), 1);
    await cli.close();
    // Stopped before its pass took the note; the next start counts one body in the segment.
    await before.close();
    const serve = new SqliteQueueStore(openDatabase(dataDir));
    try {
      await serve.maintain(maintenanceOptions());
      await serve.maintain(maintenanceOptions());
      assert.deepEqual(filledBodyFiles(dataDir), [segment]);
      assert.deepEqual(await collectBytes(serve.readBody(kept)), patternBytes(BIG, 2));
      const cli2 = new SqliteQueueStore(openDatabase(dataDir), { removeOrphans: false });
      assert.equal(await cli2.delete([kept]), 1);
      await cli2.close();
      await serve.maintain(maintenanceOptions());
      assert.ok(await eventually(() => filledBodyFiles(dataDir).length === 0));
    } finally {
      await serve.close();
    }
  });
});
