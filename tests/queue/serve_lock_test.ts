/**
 * The data directory's serve lock (src/queue/serve_lock.ts): exclusive (a second taker is
 * refused at once, told the holder's PID), released on `release`, and it creates a missing
 * data directory owner-only. Across processes and after kill -9: tests/e2e/serve_lock_test.ts.
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { DataDirBusyError, lockDataDir, SERVE_LOCK_FILE } from "../../src/queue/serve_lock.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

Deno.test("serve lock: a second taker is refused at once, naming the holder; free again after release", async () => {
  await withTempDataDir(async (root) => {
    const dataDir = `${root}/new/data`;
    const lock = await lockDataDir(dataDir);
    assertEquals((await Deno.stat(dataDir)).mode! & 0o777, 0o700);
    const file = `${dataDir}/${SERVE_LOCK_FILE}`;
    assertEquals((await Deno.stat(file)).mode! & 0o777, 0o600);
    assertEquals(await Deno.readTextFile(file), `${Deno.pid}\n`);
    await rejects(lockDataDir(dataDir), (err: unknown) => {
      assert(err instanceof DataDirBusyError);
      assertEquals(err.by, "serve");
      assert(err.message.includes(`another serve (pid ${Deno.pid}) holds data_dir "${dataDir}"`));
      return true;
    });
    lock.release();
    lock.release();
    const again = await lockDataDir(dataDir);
    again.release();
  });
});

Deno.test("serve lock: a data_dir that cannot be created is an error naming the lock file", async () => {
  await withTempDataDir(async (root) => {
    await Deno.writeTextFile(`${root}/file`, "");
    await rejects(lockDataDir(`${root}/file/data`), (err: unknown) => {
      assert(!(err instanceof DataDirBusyError));
      assert(String(err).includes(`Cannot lock data_dir "${root}/file/data"`), String(err));
      return true;
    });
  });
});

Deno.test("serve lock: a serve started while queue migrate holds it is told so, not 'another serve'", async () => {
  await withTempDataDir(async (dataDir) => {
    const lock = await lockDataDir(dataDir, "queue migrate");
    try {
      await rejects(lockDataDir(dataDir), (err: unknown) => {
        assert(err instanceof DataDirBusyError);
        assertEquals([err.holder, err.by], [Deno.pid, "queue migrate"]);
        assert(
          err.message.startsWith(`queue migrate (pid ${Deno.pid}) holds data_dir "${dataDir}"`),
          err.message,
        );
        assert(err.message.includes("queue.backend: postgres"), err.message);
        return true;
      });
    } finally {
      lock.release();
    }
  });
});
