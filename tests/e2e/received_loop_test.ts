/**
 * E2E: a mail loop as a real MTA sends it. swaks adds Received fields to its message; the real
 * `serve` takes it with 48 (its own makes 49) and refuses it with 49 at the end of data:
 * `554 5.4.6`, nothing queued, one `refused` line (RFC 5321 §6.3; Postfix's hopcount_limit 50).
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { toolTest } from "../_helpers/tools.ts";
import { swaks } from "./_swaks.ts";

/** swaks arguments adding `n` Received fields above its own headers. */
function addReceived(n: number): string[] {
  const args: string[] = [];
  for (let i = 0; i < n; i++) {
    args.push(
      "--add-header",
      `Received: from h${i}.test by relay${i}.test with ESMTP id L${i}; ` +
        "Mon, 30 Nov 2026 02:00:00 +0000",
    );
  }
  return args;
}

await toolTest("serve refuses a message with too many Received fields (swaks)", [
  "swaks",
], async () => {
  const server = await startServer();
  try {
    await addUser(server.configPath, "alice", ["example.org"]);
    const port = (server.smtp[0] ?? { port: 0 }).port;
    const taken = await swaks(port, [
      ...["--from", "hops48@example.net", "--to", "bob@example.org"],
      ...addReceived(48),
    ]);
    assertEquals(taken.code, 0, taken.out);
    const looped = await swaks(port, [
      ...["--from", "hops49@example.net", "--to", "bob@example.org"],
      ...addReceived(49),
    ]);
    match(looped.out, /<\*\* +554 5\.4\.6 /);
    const list = await queueList(server.configPath) as { from: string }[];
    assertEquals(list.map((m) => m.from), ["hops48@example.net"]);
    match(server.logs(), /event=refused .*stage=data reason=loop/);
  } finally {
    await server.stop();
    await removeTestFiles(server);
  }
});
