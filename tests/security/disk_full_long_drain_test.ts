/**
 * (session 19) A long drain on a full disk: the space reserve's room must last a whole ATRN,
 * however many messages it takes. Before, no checkpoint ran while the customer's session was
 * open (serve waits for a quiet moment) and SQLite's own came only at ~16 MB of WAL, so the
 * settlements' frames grew the WAL into the 8 MB the reserve gave back: after ~250 small
 * messages the settlement's COMMIT failed (`settle_failed`, `drain_stopped`), and the messages
 * sent but not settled went out again at the next ATRN. While the reserve is spent, SQLite now
 * checkpoints every WAL_SHORT_PAGES pages, so the WAL starts over within the room it has.
 * Real `serve` on a small tmpfs (root: skipped with the reason otherwise).
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { addUser, queueList, startServer } from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { submitAccepted } from "../_helpers/smtp_submit.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { fillUp, mountTmpfs, unmountTmpfs } from "../_helpers/tmpfs.ts";
import { eventsNamed } from "../_helpers/log_lines.ts";

const enc = new TextEncoder();
const NAME = "disk full long drain";
const MESSAGES = 500;

Deno.test("disk full: one ATRN drains 500 messages on the reserve's room, each once (session 19)", async () => {
  const dir = await mountTmpfs(NAME, "64m");
  if (dir === undefined) return;
  const opts = { dataDir: `${dir}/data`, configPath: `${dir}/config.yaml` };
  let server: ServerProcess | undefined;
  try {
    server = await startServer(opts);
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    const all = Array.from({ length: MESSAGES }, (_, i) => `m${i}@example.org`);
    // Ten senders at once.
    for (let i = 0; i < MESSAGES; i += 10) {
      await Promise.all(
        all.slice(i, i + 10).map((to) =>
          submitAccepted({
            port: server!.smtp[0]!.port,
            from: "s@sender.test",
            to: [to],
            body: enc.encode(`Subject: ${to}\r\n\r\nbody\r\n`),
          })
        ),
      );
    }
    // A new start: the WAL begins small, as after any restart.
    assertEquals(await server.stop(), 0, server.logs());
    server = await startServer(opts);
    fillUp(`${dir}/filler`);
    const drained = await runScriptedCustomer({
      port: server.odmr[0]!.port,
      auth: { mechanism: "CRAM-MD5", user: "alice", password: "alice-pw" },
      atrn: "example.org",
      timeoutMs: 60_000,
    });
    assertMatch(drained.atrnReply ?? "", /^250 /, server.logs());
    assertEquals(eventsNamed(server.logs(), "settle_failed"), [], "a settlement found no room");
    const received = drained.messages.flatMap((m) => m.rcpts);
    assertEquals(received.length, MESSAGES, "each message once");
    assertEquals(await queueList(server.configPath), []);
    assertEquals(await server.stop(), 0, server.logs());
  } finally {
    await server?.kill9();
    await unmountTmpfs(dir);
  }
});
