/**
 * (session 18) `queue delete` on a full disk: deleting mail is how an operator frees space, yet
 * the DELETE needs room in the WAL too. With serve running or stopped it must work: the tool
 * gives back serve's space reserve (which serve then notices and puts back when it can). Real
 * CLI and `serve` on a small tmpfs (root: skipped with the reason otherwise).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { addUser, queueList, runMain, startServer } from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { submitAccepted } from "../_helpers/smtp_submit.ts";
import { fillUp, mountTmpfs, unmountTmpfs } from "../_helpers/tmpfs.ts";

const enc = new TextEncoder();
const NAME = "disk full delete";

Deno.test("disk full: queue delete frees space, with serve running and stopped (session 18)", async () => {
  const dir = await mountTmpfs(NAME, "64m");
  if (dir === undefined) return;
  let server: ServerProcess | undefined;
  try {
    server = await startServer({ dataDir: `${dir}/data`, configPath: `${dir}/config.yaml` });
    await addUser(server.configPath, "alice", ["example.org", "example.net"]);
    for (const domain of ["example.org", "example.net"]) {
      for (let i = 0; i < 5; i++) {
        await submitAccepted({
          port: server.smtp[0]!.port,
          from: "s@sender.test",
          to: [`m${i}@${domain}`],
          body: enc.encode(`Subject: ${i}\r\n\r\n${"x".repeat(98)}\r\n`.repeat(i * 300 + 1)),
        });
      }
    }
    fillUp(`${dir}/filler`);
    const del = (domain: string) =>
      runMain(["queue", "delete", "--domain", domain, "--yes", "--config", server!.configPath]);
    const running = await del("example.org");
    assertEquals(running.code, 0, running.stderr);
    assertEquals(await server.stop(), 0, server.logs());
    const stopped = await del("example.net");
    assertEquals(stopped.code, 0, stopped.stderr);
    assertEquals(await queueList(server.configPath), []);
  } finally {
    await server?.kill9();
    await unmountTmpfs(dir);
  }
});
