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
import { addUser, queueList } from "../_helpers/server_process.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { fillUp } from "../_helpers/tmpfs.ts";
import { eventsNamed } from "../_helpers/log_lines.ts";
import { aliceAtrn, mailAccepted, onTmpfs } from "./_disk_full.ts";

const NAME = "disk full long drain";
const MESSAGES = 500;

Deno.test("disk full: one ATRN drains 500 messages on the reserve's room, each once (session 19)", async () => {
  await onTmpfs(NAME, "64m", async ({ dir, start }) => {
    let server = await start();
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    const all = Array.from({ length: MESSAGES }, (_, i) => `m${i}@example.org`);
    // Ten senders at once.
    for (let i = 0; i < MESSAGES; i += 10) {
      const sending = server;
      await Promise.all(
        all.slice(i, i + 10).map((to) =>
          mailAccepted(sending, to, `Subject: ${to}\r\n\r\nbody\r\n`)
        ),
      );
    }
    // A new start: the WAL begins small, as after any restart.
    assertEquals(await server.stop(), 0, server.logs());
    server = await start();
    fillUp(`${dir}/filler`);
    const drained = await runScriptedCustomer({ ...aliceAtrn(server), timeoutMs: 60_000 });
    assertMatch(drained.atrnReply ?? "", /^250 /, server.logs());
    assertEquals(eventsNamed(server.logs(), "settle_failed"), [], "a settlement found no room");
    const received = drained.messages.flatMap((m) => m.rcpts);
    assertEquals(received.length, MESSAGES, "each message once");
    assertEquals(await queueList(server.configPath), []);
    assertEquals(await server.stop(), 0, server.logs());
  });
});
