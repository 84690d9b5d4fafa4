/**
 * The users, domains and pinned certificates every node mirrors from PostgreSQL
 * (src/queue/pg/auth_mirror.ts) stay whole across changes: a reload must not lose the rows
 * that refer to a user (domains, pins) to the cascade of emptying the users table (#14).
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { CredentialStore } from "../../src/auth/store.ts";
import { openToolCredentials } from "../../src/cli/_backend.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { AuthMirror } from "../../src/queue/pg/auth_mirror.ts";
import { connectPostgres } from "../../src/queue/pg/connect.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

const FAST = { scramIterations: 4096, scryptParams: { logN: 10, r: 8, p: 1 } };
const FP = "AB".repeat(32);

await postgresTest(
  "a node's copy of the users keeps every domain and pin through successive changes (#14)",
  async (pg) => {
    const url = await pg.createDatabase("auth_mirror");
    await withTempDataDir(async (dataDir) => {
      const storage = { backend: "postgres" as const, postgres: { url, passwordFile: undefined } };
      const tool = await openToolCredentials(dataDir, storage, FAST);
      const sql = await connectPostgres({ url, max: 2 });
      const copy = new DatabaseSync(":memory:");
      const node = new CredentialStore(copy);
      let mirror: AuthMirror | undefined;
      try {
        await tool.edit((s) => s.addUser("alice", "pw", ["one.test", "two.test"]));
        mirror = await AuthMirror.start(sql, copy, NULL_LOGGER);
        // Each change in a transaction of its own, as `user …` commands run one after another.
        await tool.edit((s) => Promise.resolve(s.certificates.pin("alice", FP)));
        await tool.edit((s) => s.addUser("bob", "pw", ["three.test"]));
        await mirror.refresh();
        const want = [
          { name: "alice", domains: ["one.test", "two.test"] },
          { name: "bob", domains: ["three.test"] },
        ];
        assert.deepEqual(node.listUsers(), want, "the node's copy");
        assert.equal(node.certificates.userOf(FP), "alice");
        assert.deepEqual(await tool.read((s) => Promise.resolve(s.listUsers())), want);
        assert.equal(await tool.read((s) => Promise.resolve(s.certificates.userOf(FP))), "alice");
        // Removing a user removes its pins with it, everywhere.
        await tool.edit((s) => Promise.resolve(s.removeUser("alice")));
        await mirror.refresh();
        assert.deepEqual(node.listUsers(), [{ name: "bob", domains: ["three.test"] }]);
        assert.equal(node.certificates.userOf(FP), undefined);
      } finally {
        await mirror?.stop();
        await sql.end({ timeout: 1 });
        await tool.close();
        copy.close();
      }
    });
  },
);
