/**
 * (session 18) `queue delete` on a full disk: deleting mail is how an operator frees space, yet
 * the DELETE needs room in the WAL too. With serve running or stopped it must work: the tool
 * gives back serve's space reserve (which serve then notices and puts back when it can). Real
 * CLI and `serve` on a small tmpfs (root: skipped with the reason otherwise).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { addUser, queueList, runMain } from "../_helpers/server_process.ts";
import { fillUp } from "../_helpers/tmpfs.ts";
import { mailAccepted, onTmpfs } from "./_disk_full.ts";

const NAME = "disk full delete";

Deno.test("disk full: queue delete frees space, with serve running and stopped (session 18)", async () => {
  await onTmpfs(NAME, "64m", async ({ dir, start }) => {
    const server = await start();
    await addUser(server.configPath, "alice", ["example.org", "example.net"]);
    for (const domain of ["example.org", "example.net"]) {
      for (let i = 0; i < 5; i++) {
        const body = `Subject: ${i}\r\n\r\n${"x".repeat(98)}\r\n`.repeat(i * 300 + 1);
        await mailAccepted(server, `m${i}@${domain}`, body);
      }
    }
    fillUp(`${dir}/filler`);
    const del = (domain: string) =>
      runMain(["queue", "delete", "--domain", domain, "--yes", "--config", server.configPath]);
    const running = await del("example.org");
    assertEquals(running.code, 0, running.stderr);
    assertEquals(await server.stop(), 0, server.logs());
    const stopped = await del("example.net");
    assertEquals(stopped.code, 0, stopped.stderr);
    assertEquals(await queueList(server.configPath), []);
  });
});
