/**
 * (session 19) The operator's repairs on a full disk, serve stopped: the customer's server
 * refused every recipient while the disk filled up. `queue requeue --failed` gives them another
 * chance and `user passwd` lets the customer in again; both are writes, and each must work on
 * a full disk (using serve's space reserve, as `queue delete` does), or the mail that would free
 * the space could never be collected. Then serve starts and the customer's ATRN takes the mail.
 * Real CLI and `serve` on a small tmpfs (root: skipped with the reason otherwise).
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { addUser, queueList, runMain } from "../_helpers/server_process.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { fillUp } from "../_helpers/tmpfs.ts";
import { aliceAtrn, mailAccepted, onTmpfs } from "./_disk_full.ts";

const NAME = "disk full admin";
const MESSAGES = 40;
type Listed = { recipients: { address: string; status: string }[] }[];

Deno.test("disk full, serve stopped: queue requeue and user passwd work, then ATRN takes the mail (session 19)", async () => {
  await onTmpfs(NAME, "64m", async ({ dir, start }) => {
    let server = await start();
    const configPath = server.configPath;
    await addUser(configPath, "alice", ["example.org"], "alice-pw");
    const all = Array.from({ length: MESSAGES }, (_, i) => `m${i}@example.org`);
    // Bounces (MAIL FROM:<>): the refusals below send no failure report that would queue more.
    for (const [i, to] of all.entries()) {
      await mailAccepted(server, to, `Subject: ${i}\r\n\r\nbody\r\n`, "");
    }
    const refused = await runScriptedCustomer({
      ...aliceAtrn(server),
      rcptReply: () => "550 5.1.1 no such user",
    });
    assertMatch(refused.atrnReply ?? "", /^250 /, server.logs());
    const statuses = () =>
      queueList(configPath).then((l) =>
        (l as Listed).flatMap((m) => m.recipients.map((r) => r.status))
      );
    assertEquals(await statuses(), all.map(() => "failed"));
    assertEquals(await server.stop(), 0, server.logs());
    fillUp(`${dir}/filler`);

    // serve stopped: even opening the database needs room (its -shm file).
    const passwd = await runMain(
      ["user", "passwd", "alice", "--password-stdin", "--config", configPath],
      { stdin: "new-pw\n" },
    );
    assertEquals(passwd.code, 0, passwd.stdout + passwd.stderr);
    // serve running (its WAL started afresh, small): all the recipients' rows in one transaction.
    server = await start();
    const requeue = await runMain(["queue", "requeue", "--failed", "--config", configPath]);
    assertEquals(requeue.code, 0, requeue.stdout + requeue.stderr);
    assertEquals(await statuses(), all.map(() => "queued"));

    const drained = await runScriptedCustomer(aliceAtrn(server, "new-pw"));
    assertMatch(drained.atrnReply ?? "", /^250 /, server.logs());
    assertEquals(drained.messages.flatMap((m) => m.rcpts).sort(), [...all].sort());
  });
});
