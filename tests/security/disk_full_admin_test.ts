/**
 * (session 19) The operator's repairs on a full disk, serve stopped: the customer's server
 * refused every recipient while the disk filled up. `queue requeue --failed` gives them another
 * chance and `user passwd` lets the customer in again; both are writes, and each must work on
 * a full disk (using serve's space reserve, as `queue delete` does), or the mail that would free
 * the space could never be collected. Then serve starts and the customer's ATRN takes the mail.
 * Real CLI and `serve` on a small tmpfs (root: skipped with the reason otherwise).
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { addUser, queueList, runMain, startServer } from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { submitAccepted } from "../_helpers/smtp_submit.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { fillUp, mountTmpfs, unmountTmpfs } from "../_helpers/tmpfs.ts";

const enc = new TextEncoder();
const NAME = "disk full admin";
const MESSAGES = 40;
type Listed = { recipients: { address: string; status: string }[] }[];

Deno.test("disk full, serve stopped: queue requeue and user passwd work, then ATRN takes the mail (session 19)", async () => {
  const dir = await mountTmpfs(NAME, "64m");
  if (dir === undefined) return;
  const opts = { dataDir: `${dir}/data`, configPath: `${dir}/config.yaml` };
  let server: ServerProcess | undefined;
  try {
    server = await startServer(opts);
    await addUser(server.configPath, "alice", ["example.org"], "old-pw");
    const all: string[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      all.push(`m${i}@example.org`);
      await submitAccepted({
        port: server.smtp[0]!.port,
        from: "",
        to: [all[i]!],
        body: enc.encode(`Subject: ${i}\r\n\r\nbody\r\n`),
      });
    }
    const customer = {
      port: server.odmr[0]!.port,
      auth: { mechanism: "CRAM-MD5" as const, user: "alice", password: "old-pw" },
      atrn: "example.org",
      timeoutMs: 20_000,
    };
    const refused = await runScriptedCustomer({
      ...customer,
      rcptReply: () => "550 5.1.1 no such user",
    });
    assertMatch(refused.atrnReply ?? "", /^250 /, server.logs());
    const statuses = () =>
      queueList(server!.configPath).then((l) =>
        (l as Listed).flatMap((m) => m.recipients.map((r) => r.status))
      );
    assertEquals(await statuses(), all.map(() => "failed"));
    assertEquals(await server.stop(), 0, server.logs());
    fillUp(`${dir}/filler`);

    // serve stopped: even opening the database needs room (its -shm file).
    const passwd = await runMain(
      ["user", "passwd", "alice", "--password-stdin", "--config", opts.configPath],
      { stdin: "new-pw\n" },
    );
    assertEquals(passwd.code, 0, passwd.stdout + passwd.stderr);
    // serve running (its WAL started afresh, small): all the recipients' rows in one transaction.
    server = await startServer(opts);
    const requeue = await runMain(["queue", "requeue", "--failed", "--config", opts.configPath]);
    assertEquals(requeue.code, 0, requeue.stdout + requeue.stderr);
    assertEquals(await statuses(), all.map(() => "queued"));

    const drained = await runScriptedCustomer({
      ...customer,
      port: server.odmr[0]!.port,
      auth: { ...customer.auth, password: "new-pw" },
    });
    assertMatch(drained.atrnReply ?? "", /^250 /, server.logs());
    assertEquals(drained.messages.flatMap((m) => m.rcpts).sort(), [...all].sort());
  } finally {
    await server?.kill9();
    await unmountTmpfs(dir);
  }
});
