/** UserStateStore: the last ATRN success survives reopening the database; ping fails once closed. */
import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { UserStateStore } from "../../src/queue/user_state.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

Deno.test("UserStateStore keeps the latest ATRN success per user across a reopen", async () => {
  await withTempDataDir((dataDir) => {
    const db = openDatabase(dataDir);
    try {
      const state = new UserStateStore(db);
      state.recordAtrnSuccess("alice", 2_000);
      state.recordAtrnSuccess("alice", 1_000); // an older report never moves it back
      state.recordAtrnSuccess("bob", 5_000);
    } finally {
      db.close();
    }
    const again = openDatabase(dataDir);
    try {
      const state = new UserStateStore(again); // migration already applied: a no-op
      assertEquals(state.lastAtrnSuccesses(), new Map([["alice", 2_000], ["bob", 5_000]]));
    } finally {
      again.close();
    }
  });
});

Deno.test("UserStateStore.ping() answers while open and throws once the database is closed", async () => {
  await withTempDataDir((dataDir) => {
    const db = openDatabase(dataDir);
    const state = new UserStateStore(db);
    state.ping();
    db.close();
    assertThrows(() => state.ping());
  });
});
