/**
 * (session 18) kill -9 during a drain, then the disk fills up: `serve` must start again, under
 * the README's permissions, and drain what is queued. Before, the start failed (`PRAGMA
 * auto_vacuum` and the release of the dead process's leases need room) and systemd restarted it
 * every 5 s, so the mail that would free space could never be collected. Now it starts, refuses
 * new mail with 452 4.3.1 while space is short (unless SQLite has room for it in its files), serves
 * ATRN, and `queue list` reads the queue.
 * Real `serve` on a small tmpfs (root: skipped with the reason otherwise).
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { addUser, queueList, startServer } from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { submit } from "../_helpers/smtp_submit.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { mapPaths, README_PATHS, readmeFlags } from "../_helpers/documented_flags.ts";
import { fillUp, mountTmpfs, unmountTmpfs } from "../_helpers/tmpfs.ts";
import { eventsNamed } from "../_helpers/log_lines.ts";

const enc = new TextEncoder();
const NAME = "disk full start";
const MESSAGES = 4;
type Listed = { recipients: { address: string }[] }[];

Deno.test("disk full after kill -9 mid-drain: serve starts, refuses mail with 452 4.3.1, drains over ATRN (session 18)", async () => {
  const dir = await mountTmpfs(NAME, "64m");
  if (dir === undefined) return;
  const data = `${dir}/data`;
  const flags = mapPaths(await readmeFlags("serve"), {
    [README_PATHS.config]: dir,
    [README_PATHS.data]: data,
  });
  const opts = { dataDir: data, configPath: `${dir}/config.yaml`, denoFlags: flags };
  let server: ServerProcess | undefined;
  try {
    server = await startServer(opts);
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    const send = (to: string) =>
      submit({
        port: server!.smtp[0]!.port,
        from: "s@sender.test",
        to: [to],
        body: enc.encode(`Subject: ${to}\r\n\r\nbody\r\n`),
      });
    const all: string[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      all.push(`m${i}@example.org`);
      assertMatch((await send(all[i]!)).final ?? "", /^250 /);
    }
    const customer = {
      port: server.odmr[0]!.port,
      auth: { mechanism: "CRAM-MD5" as const, user: "alice", password: "alice-pw" },
      atrn: "example.org",
      timeoutMs: 20_000,
    };
    // The disk fills up and serve dies while the customer takes the first message: its lease
    // stays in the file.
    let killed: Promise<void> | undefined;
    const first = server;
    await runScriptedCustomer({
      ...customer,
      dataReply: (index) => {
        if (index === 0) {
          fillUp(`${dir}/filler`);
          killed = first.kill9();
        }
        return "250 2.0.0 OK";
      },
    }).catch(() => undefined); // serve is gone under it
    await killed;

    server = await startServer(opts);
    // Refused for want of room; or stored in room SQLite's WAL file already had (when the start
    // needed none of the reserve), and then drained with the rest.
    const late = (await send("late@example.org")).final ?? "";
    const spent = eventsNamed(server.logs(), "space_reserve_used").length > 0;
    assertMatch(late, spent ? /^452 4\.3\.1 / : /^(452 4\.3\.1|250) /, server.logs());
    if (late.startsWith("250 ")) all.push("late@example.org");
    const next = await runScriptedCustomer({ ...customer, port: server.odmr[0]!.port });
    assertMatch(next.atrnReply ?? "", /^250 /, server.logs());
    const received = next.messages.flatMap((m) => m.rcpts);
    assertEquals(all.filter((a) => !received.includes(a)), [], "queued but not drained");
    const left = (await queueList(server.configPath) as Listed).flatMap((m) =>
      m.recipients.map((r) => r.address)
    );
    assertEquals(left, []);
    assertEquals(await server.stop(), 0, server.logs());
  } finally {
    await server?.kill9();
    await unmountTmpfs(dir);
  }
});
