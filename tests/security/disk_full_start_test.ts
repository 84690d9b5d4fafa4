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
import { addUser, type ServerProcess } from "../_helpers/server_process.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { mapPaths, README_PATHS, readmeFlags } from "../_helpers/documented_flags.ts";
import { fillUp } from "../_helpers/tmpfs.ts";
import { eventsNamed } from "../_helpers/log_lines.ts";
import { aliceAtrn, mailTo, onTmpfs, queuedAddresses } from "./_disk_full.ts";

const NAME = "disk full start";
const MESSAGES = 4;

Deno.test("disk full after kill -9 mid-drain: serve starts, refuses mail with 452 4.3.1, drains over ATRN (session 18)", async () => {
  await onTmpfs(NAME, "64m", async ({ dir, start }) => {
    const flags = mapPaths(await readmeFlags("serve"), {
      [README_PATHS.config]: dir,
      [README_PATHS.data]: `${dir}/data`,
    });
    const first = await start({ denoFlags: flags });
    await addUser(first.configPath, "alice", ["example.org"], "alice-pw");
    const send = (server: ServerProcess, to: string) =>
      mailTo(server, to, `Subject: ${to}\r\n\r\nbody\r\n`);
    const all: string[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      all.push(`m${i}@example.org`);
      assertMatch((await send(first, all[i]!)).final ?? "", /^250 /);
    }
    // The disk fills up and serve dies while the customer takes the first message: its lease
    // stays in the file.
    let killed: Promise<void> | undefined;
    await runScriptedCustomer({
      ...aliceAtrn(first),
      dataReply: (index) => {
        if (index === 0) {
          fillUp(`${dir}/filler`);
          killed = first.kill9();
        }
        return "250 2.0.0 OK";
      },
    }).catch(() => undefined); // serve is gone under it
    await killed;

    const server = await start({ denoFlags: flags });
    // Refused for want of room; or stored in room SQLite's WAL file already had (when the start
    // needed none of the reserve), and then drained with the rest.
    const late = (await send(server, "late@example.org")).final ?? "";
    const spent = eventsNamed(server.logs(), "space_reserve_used").length > 0;
    assertMatch(late, spent ? /^452 4\.3\.1 / : /^(452 4\.3\.1|250) /, server.logs());
    if (late.startsWith("250 ")) all.push("late@example.org");
    const next = await runScriptedCustomer(aliceAtrn(server));
    assertMatch(next.atrnReply ?? "", /^250 /, server.logs());
    const received = next.messages.flatMap((m) => m.rcpts);
    assertEquals(all.filter((a) => !received.includes(a)), [], "queued but not drained");
    assertEquals(await queuedAddresses(server.configPath), []);
    assertEquals(await server.stop(), 0, server.logs());
  });
});
