/**
 * E2E: one `serve` per SQLite data_dir. A second serve on the same data_dir is refused at start
 * (exit 1, one line naming the directory and the holder) before it binds a port, while the
 * first keeps serving and `queue`/`user` commands keep working beside it; a serve killed with
 * -9 leaves nothing that stops the next one; PostgreSQL nodes take no such lock.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { postgresTest } from "../_helpers/postgres.ts";
import { postgresNodeConfig } from "../_helpers/postgres_nodes.ts";
import {
  addUser,
  queueList,
  removeTestFiles,
  runMain,
  type ServerProcess,
  startServer,
} from "../_helpers/server_process.ts";
import { assertRefused, serveOnce } from "../_helpers/serve_once.ts";
import { submit } from "../_helpers/smtp_submit.ts";

const enc = new TextEncoder();

async function accepted(server: ServerProcess, from: string): Promise<boolean> {
  const r = await submit({
    port: server.smtp[0]!.port,
    from,
    to: ["bob@example.org"],
    body: enc.encode(`Subject: ${from}\r\n\r\nbody\r\n`),
  });
  return r.final?.startsWith("250 ") ?? false;
}

Deno.test("a second serve on the same SQLite data_dir exits 1 before binding a port; queue and user commands work beside the first", async () => {
  const first = await startServer();
  try {
    await addUser(first.configPath, "alice", ["example.org"]);
    assert(await accepted(first, "one@sender.test"));
    // The same config: the same data_dir, and listeners on port 0 that nothing else holds.
    assertRefused(await serveOnce(first.configPath), first.dataDir, first.pid);
    // The first still serves, and the tools work beside it (no lock for them).
    assert(await accepted(first, "two@sender.test"), first.logs());
    const listed = await queueList(first.configPath) as { from: string }[];
    assertEquals(listed.map((m) => m.from).sort(), ["one@sender.test", "two@sender.test"]);
    const users = await runMain(["user", "list", "--json", "--config", first.configPath]);
    assertEquals(users.code, 0, users.stderr);
    assertEquals(JSON.parse(users.stdout).map((u: { name: string }) => u.name), ["alice"]);
    // Refused again while it lasts: the lock is held for the process's lifetime.
    assertRefused(await serveOnce(first.configPath), first.dataDir, first.pid);
    assertEquals(await first.stop(), 0, first.logs());
  } finally {
    await first.kill9();
    await removeTestFiles(first);
  }
});

Deno.test("a serve killed with -9 leaves nothing that stops the next one on its data_dir", async () => {
  const first = await startServer();
  let second: ServerProcess | undefined;
  try {
    await addUser(first.configPath, "alice", ["example.org"]);
    assert(await accepted(first, "kept@sender.test"));
    await first.kill9();
    // Its lock file stays behind, naming it: the kernel released the lock itself.
    const lockFile = `${first.dataDir}/serve.lock`;
    assertEquals((await Deno.readTextFile(lockFile)).trim(), String(first.pid));
    second = await startServer({ dataDir: first.dataDir });
    assertEquals((await Deno.readTextFile(lockFile)).trim(), String(second.pid));
    const listed = await queueList(second.configPath) as { from: string }[];
    assertEquals(listed.map((m) => m.from), ["kept@sender.test"]);
    assertRefused(await serveOnce(second.configPath), first.dataDir, second.pid);
    assertEquals(await second.stop(), 0, second.logs());
  } finally {
    await first.kill9();
    await second?.kill9();
    await removeTestFiles(first);
  }
});

await postgresTest(
  "PostgreSQL: two serve nodes may share one data_dir (the queue is the database's; no lock)",
  async (pg) => {
    const url = await pg.createDatabase("shared_data_dir");
    const a = await startServer({ config: postgresNodeConfig("mx-a.test", url) });
    let b: ServerProcess | undefined;
    try {
      // startServer returns once B logged `ready`: it was not refused.
      b = await startServer({
        config: postgresNodeConfig("mx-b.test", url),
        dataDir: a.dataDir,
        configPath: `${a.dataDir}.b.config.yaml`,
      });
      assertEquals(await b.stop(), 0, b.logs());
      assertEquals(await a.stop(), 0, a.logs());
    } finally {
      await a.kill9();
      await b?.kill9();
      await removeTestFiles(a);
      await Deno.remove(`${a.dataDir}.b.config.yaml`).catch(() => {});
    }
  },
);
